"""The migrations build exactly the schema the models describe, on a fresh database of
the backend under test; upgrading is idempotent and a full downgrade round-trips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cartback.core.db import make_engine
from cartback.migrations import alembic_config, upgrade
from cartback.models import metadata
from support.databases import fresh_database


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """An empty database, not the suite's shared one."""
    with fresh_database(tmp_path, prefix="cb_mig") as url:
        yield url


def differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            diff: list[Any] = compare_metadata(context, metadata)
            return diff
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_upgrade_builds_exactly_the_models_schema(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert differences(fresh_url) == []
    assert tables(fresh_url) == {t.name for t in metadata.sorted_tables} | {"alembic_version"}


def test_upgrading_twice_changes_nothing(fresh_url: str) -> None:
    upgrade(fresh_url)
    head = current_revision(fresh_url)
    upgrade(fresh_url)
    assert current_revision(fresh_url) == head
    assert head is not None
    assert differences(fresh_url) == []


def test_downgrade_to_base_then_upgrade_again(fresh_url: str) -> None:
    upgrade(fresh_url)
    command.downgrade(alembic_config(fresh_url), "base")
    assert tables(fresh_url) <= {"alembic_version"}
    assert current_revision(fresh_url) is None
    upgrade(fresh_url)
    assert differences(fresh_url) == []
