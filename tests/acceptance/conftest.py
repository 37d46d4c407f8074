"""Acceptance fixtures: one fresh database per test module (SQLite file, or a PostgreSQL
database when CARTBACK_TEST_DB=postgresql), migrated by ``cartback db upgrade`` itself,
emptied before each test; the processes a test starts are stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_harness import Cartback

from support.databases import empty_tables, fresh_database


@pytest.fixture(scope="module")
def module_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("acceptance-db")
    with fresh_database(directory) as url:
        Cartback(url, directory).run("db", "upgrade")
        yield url


@pytest.fixture
def cartback(module_database: str, tmp_path: Path) -> Iterator[Cartback]:
    empty_tables(module_database)
    cli = Cartback(module_database, tmp_path)
    try:
        yield cli
    finally:
        cli.stop_all()
