"""Maintenance: expire carts idle for longer than the expiry, in bounded batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from cartback.carts.models import Cart
from cartback.carts.service import expire_idle
from cartback.core.clock import Clock
from cartback.queue import ClaimedJob, Registry, Reschedule, enqueue

EXPIRE_JOB = "maintenance.expire_carts"
SYSTEM = "_system"
# A batch small enough to keep the writer lock short; a full batch runs again at once.
BATCH = 500
EVERY = timedelta(hours=1)


OnExpired = Callable[[Session, list[Cart], datetime], None]


def register(
    registry: Registry, clock: Clock, *, expiry: timedelta, on_expired: OnExpired | None = None
) -> None:
    """``on_expired`` runs in the same transaction, e.g. to end the carts' journeys."""

    def handle(session: Session, job: ClaimedJob) -> Reschedule:
        now = clock.now()
        expired = expire_idle(session, before=now - expiry, now=now, limit=BATCH)
        if on_expired is not None and expired:
            on_expired(session, expired, now)
        done = len(expired)
        return Reschedule(now if done == BATCH else now + EVERY, f"expired {done} carts")

    registry.register(EXPIRE_JOB, handle)


def schedule(session: Session, clock: Clock) -> None:
    enqueue(
        session,
        store_id=SYSTEM,
        kind=EXPIRE_JOB,
        key=EXPIRE_JOB,
        run_at=clock.now(),
        now=clock.now(),
    )
