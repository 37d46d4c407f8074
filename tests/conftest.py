"""Fixtures shared by every tier: a real database (SQLite or PostgreSQL, picked by
CARTBACK_TEST_DB), the app wired with a ManualClock, a store and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime, build_runtime, create_app
from cartback.core.clock import ManualClock
from cartback.migrations import upgrade
from cartback.settings import Settings
from support.databases import empty_tables, fresh_database
from support.factories import START, StoreKeys, make_store
from support.smtp import SmtpSink
from support.stand_in import Serve, stand_ins


@pytest.fixture(scope="session")
def migrated_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per test run; each test starts from empty tables."""
    with fresh_database(tmp_path_factory.mktemp("db"), prefix="cb_test") as url:
        upgrade(url)
        yield url


@pytest.fixture
def database_url(migrated_url: str) -> str:
    empty_tables(migrated_url)
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


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Stand-in provider servers on loopback (see support/stand_in.py)."""
    with stand_ins() as start:
        yield start


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An HTTP client with short timeouts, for adapters under test."""
    with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0)) as client:
        yield client
