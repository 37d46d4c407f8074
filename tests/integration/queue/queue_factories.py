"""Deterministic factories for the queue's integration tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.queue import ClaimedJob, Job, enqueue

START = datetime.fromisoformat("2026-01-05T09:00:00+00:00")
STORE = "st_test"


def add_job(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    key: str,
    *,
    due_in: timedelta = timedelta(0),
    kind: str = "test.job",
    payload: dict[str, Any] | None = None,
    max_attempts: int = 10,
) -> None:
    """Enqueue one job (committed) due ``due_in`` from the clock's now."""
    with transaction(sessions) as session:
        enqueue(
            session,
            store_id=STORE,
            kind=kind,
            key=key,
            run_at=clock.now() + due_in,
            payload=payload,
            max_attempts=max_attempts,
            now=clock.now(),
        )


def get_job(sessions: sessionmaker[Session], key: str) -> Job | None:
    with sessions() as session:
        return session.scalars(select(Job).where(Job.store_id == STORE, Job.key == key)).first()


def all_keys(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Job.key).order_by(Job.key)))


SEED = 7  # the workers' random source, so tests can predict each backoff
LEASE = timedelta(minutes=5)


def follow_up(session: Session, job: ClaimedJob, suffix: str = "next") -> None:
    """The handler's own work in these tests: schedule another job."""
    enqueue(
        session,
        store_id=job.store_id,
        kind="test.follow_up",
        key=f"{job.key}:{suffix}",
        run_at=START + timedelta(days=1),
        now=START,
    )
