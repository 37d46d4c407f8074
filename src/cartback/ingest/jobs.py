"""Maintenance: prune raw events older than the retention period, in bounded batches."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cartback.core.clock import Clock
from cartback.ingest.models import Event
from cartback.queue import ClaimedJob, Registry, Reschedule, enqueue

PRUNE_JOB = "maintenance.prune_events"
SYSTEM = "_system"
BATCH = 5000
EVERY = timedelta(hours=1)


def prune_events(session: Session, *, before: datetime, limit: int) -> int:
    ids = list(
        session.execute(
            select(Event.id)
            .where(Event.received_at < before)
            .order_by(Event.received_at, Event.id)
            .limit(limit)
        ).scalars()
    )
    if ids:
        session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)


def register(registry: Registry, clock: Clock, *, retention: timedelta) -> None:
    def handle(session: Session, job: ClaimedJob) -> Reschedule:
        now = clock.now()
        done = prune_events(session, before=now - retention, limit=BATCH)
        return Reschedule(now if done == BATCH else now + EVERY, f"pruned {done} events")

    registry.register(PRUNE_JOB, handle)


def schedule(session: Session, clock: Clock) -> None:
    enqueue(
        session, store_id=SYSTEM, kind=PRUNE_JOB, key=PRUNE_JOB, run_at=clock.now(), now=clock.now()
    )
