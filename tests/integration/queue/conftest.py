"""Fixtures for the queue's integration tests: a real database per test.

CARTBACK_TEST_DB picks the backend: ``sqlite`` (default, a temp file) or
``postgresql`` (a fresh database on 127.0.0.1:5432, dropped afterwards).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from queue_factories import START, backend
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import Base, make_engine, make_sessionmaker
from cartback.queue import Job

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_path / 'queue.db'}"
        return
    name = f"cb_queue_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    Base.metadata.create_all(engine, tables=[Job.__table__])  # type: ignore[list-item]
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)
