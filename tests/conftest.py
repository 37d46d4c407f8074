"""Fixtures shared by every tier: a real database (SQLite or PostgreSQL, picked by
CARTBACK_TEST_DB), the app wired with a ManualClock, a store and a real SMTP server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from cartback.app import Runtime, build_runtime, create_app
from cartback.core.clock import ManualClock
from cartback.core.db import make_engine
from cartback.migrations import upgrade
from cartback.models import metadata
from cartback.settings import Settings
from support.factories import START, StoreKeys, make_store
from support.smtp import SmtpSink

PG_SERVER = os.environ.get("CARTBACK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def backend() -> str:
    return os.environ.get("CARTBACK_TEST_DB", "sqlite")


@pytest.fixture(scope="session")
def migrated_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per test run; each test starts from empty tables."""
    if backend() == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cartback.db'}"
        upgrade(url)
        yield url
        return
    name = f"cb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(migrated_url: str) -> str:
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(text(f"DELETE FROM {table.name}"))
    engine.dispose()
    return migrated_url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        base_url="http://cartback.test",
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
        outbox_dir=str(tmp_path / "outbox"),
    )


@pytest.fixture
def runtime(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    rt = build_runtime(settings, clock, migrate=False)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(
        create_app(runtime), raise_server_exceptions=False, base_url="http://cartback.test"
    ) as c:
        yield c


@pytest.fixture
def store(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return make_store(runtime, clock, name="Acme Shoes")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The providers' real wire samples, in shared/ beside the checkout."""
    found = Path(__file__).resolve().parents[2] / "shared" / "samples"
    assert found.is_dir(), f"expected the shared samples at {found}"
    return found


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()
