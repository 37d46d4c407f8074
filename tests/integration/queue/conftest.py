"""Fixtures for the queue's integration tests: a real database per test.

CARTBACK_TEST_DB picks the backend: ``sqlite`` (default, a temp file) or
``postgresql`` (a fresh database on 127.0.0.1:5432, dropped afterwards).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_factories import LEASE, SEED, START
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import Base, make_engine, make_sessionmaker
from cartback.queue import Job, Registry, Worker
from support.databases import fresh_database


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, prefix="cb_queue") as url:
        yield url


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


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def worker(
    sessions: sessionmaker[Session], registry: Registry, clock: ManualClock
) -> Iterator[Worker]:
    with Worker(
        sessions, registry, clock, worker_id="w1", lease=LEASE, rng=random.Random(SEED)
    ) as worker:
        yield worker
