"""The one table of due work.

Job states (the only transitions there are):

    pending --claim--> running --handler returns None--> (row deleted)
       ^                  |  \\--handler returns Reschedule / raises--> pending (run_at moved)
       |                  |   \\--too many failed attempts--> failed (kept for people to see)
       +--lease expires---+   (a claimed job's run_at is its lease end, so a crashed
                               worker's job simply becomes due again)

A job is unique per (store_id, key): enqueueing the same key twice never makes
two jobs (``ON CONFLICT``), which is how step N schedules step N+1 only once.

What ``run_at`` means depends on the state: pending -- when the job is due;
running -- when its lease ends; failed -- when it failed (``prune_failed``
uses it). ``last_error`` holds the last failure's short text or the reason of
the last ``Reschedule``. A job whose attempts are used up when its lease runs
out goes to failed at the next claim instead of running again. The statements
that make each transition are named in ``queries.py``; docs/job-lifecycle.md
tells the same story for people.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, JSONType, UTCDateTime


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FAILED = "failed"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("store_id", "key"),
        # The claim reads only this index: due, claimable rows ordered by run_at.
        Index(
            "ix_jobs_due",
            "run_at",
            postgresql_where=text("status IN ('pending', 'running')"),
            sqlite_where=text("status IN ('pending', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    store_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING)
    # For a pending job: when it is due. For a running job: when its lease ends.
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=10)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
