"""What domain code calls to schedule, cancel and watch due work.

Every function takes the caller's session and runs its statement in the
caller's transaction; none commits (the caller owns the transaction), so a job
is scheduled exactly when the domain change that needs it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cartback.queue import queries
from cartback.queue.models import JobStatus


def enqueue(
    session: Session,
    *,
    store_id: str,
    kind: str,
    key: str,
    run_at: datetime,
    payload: dict[str, Any] | None = None,
    replace: bool = False,
    max_attempts: int = 10,
    now: datetime,
) -> None:
    """Schedule ``kind`` to run at ``run_at``, once per (store_id, key).

    Enqueueing a key that already has a job does nothing (``ON CONFLICT DO
    NOTHING``): step N schedules step N+1 only once even when step N is retried.

    With ``replace=True`` the existing job gets the new run_at and payload and
    starts afresh (pending, no attempts, no error) -- this is how a cart's
    abandonment check moves each time the shopper does something. A failed job
    is brought back this way too. A **running** job is not touched: its run_at
    is its lease, so moving it would let a second worker claim it while the
    first still runs it, and the first would then delete or reschedule the row
    anyway. Handlers re-check current state when they run, so the running one
    sees the change that asked for the replace if it reads after that change
    commits; one that must not miss it can compare and return a Reschedule.

    >>> enqueue(session, store_id="st_1", kind="cart.check_abandoned",
    ...         key="cart:c_9:abandon", run_at=now + timedelta(hours=1),
    ...         replace=True, now=now)  # doctest: +SKIP
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    values = {
        "store_id": store_id,
        "kind": kind,
        "key": key,
        "payload": payload or {},
        "status": JobStatus.PENDING.value,
        "run_at": run_at,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
    }
    queries.insert_job(session, values, replace=replace)


@dataclass(frozen=True)
class NewJob:
    store_id: str
    kind: str
    key: str
    run_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 10


def enqueue_many(
    session: Session, jobs: Sequence[NewJob], *, replace: bool = False, now: datetime
) -> None:
    """:func:`enqueue` for many jobs in one statement (a group commit's worth).
    Keys must be distinct within the call."""
    rows = [
        {
            "store_id": job.store_id,
            "kind": job.kind,
            "key": job.key,
            "payload": job.payload,
            "status": JobStatus.PENDING.value,
            "run_at": job.run_at,
            "attempts": 0,
            "max_attempts": job.max_attempts,
            "created_at": now,
        }
        for job in jobs
    ]
    queries.insert_jobs(session, rows, replace=replace)


def cancel(session: Session, *, store_id: str, key: str) -> bool:
    """Delete the pending job (store_id, key); True if there was one.

    A running job is not cancelled (its handler re-checks state when it runs);
    a failed one stays for people to see.
    """
    return queries.delete_pending(session, store_id=store_id, key=key)


def due_count(session: Session, *, now: datetime) -> int:
    """How many jobs are due (including stalled ones whose lease ran out)."""
    return queries.count_due(session, now=now)


def oldest_due(session: Session, *, now: datetime) -> datetime | None:
    """The run_at of the job that has waited longest; ``now - oldest_due`` is the lag."""
    return queries.min_due(session, now=now)


def prune_failed(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs that failed before ``before``; returns how many."""
    return queries.delete_failed(session, before=before, limit=limit)
