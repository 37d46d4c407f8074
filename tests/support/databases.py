"""Real databases for tests. CARTBACK_TEST_DB picks the backend: ``sqlite`` (default, a
file) or ``postgresql`` (a new database on CARTBACK_TEST_PG, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from cartback.core.db import make_engine
from cartback.models import metadata

PG_SERVER = os.environ.get("CARTBACK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def backend() -> str:
    name = os.environ.get("CARTBACK_TEST_DB", "sqlite")
    if name not in ("sqlite", "postgresql"):
        raise pytest.UsageError(f"CARTBACK_TEST_DB must be sqlite or postgresql, not {name!r}")
    return name


@contextmanager
def fresh_database(directory: Path, *, prefix: str = "cb_test") -> Iterator[str]:
    """The URL of a new, empty database that is gone afterwards."""
    if backend() == "sqlite":
        yield f"sqlite:///{directory / f'{prefix}.db'}"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_tables(url: str) -> None:
    """Delete every row, children first, keeping the schema."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(text(f"DELETE FROM {table.name}"))
    finally:
        engine.dispose()
