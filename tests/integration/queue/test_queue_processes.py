"""Several worker processes drain one PostgreSQL queue: every job runs exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import datetime
from threading import Barrier

import pytest
from queue_factories import START, STORE, all_keys
from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import make_engine, make_sessionmaker, transaction
from cartback.queue import ClaimedJob, Job, JobStatus, Registry, Worker
from support.databases import backend

JOBS = 2_000
PROCESSES = 4

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        backend() != "postgresql",
        reason="concurrent worker processes need PostgreSQL (CARTBACK_TEST_DB=postgresql)",
    ),
]


def _record_run(session: Session, job: ClaimedJob) -> None:
    # A second run of any key would violate the unique constraint and fail the job.
    session.execute(text("INSERT INTO job_runs (job_key) VALUES (:key)"), {"key": job.key})


def drain(url: str, now: str, worker_no: int, barrier: Barrier) -> int:
    """One worker process: claim until nothing is left for it; returns jobs handled."""
    engine = make_engine(url)
    registry = Registry()
    registry.register("test.run", _record_run)
    clock = ManualClock(datetime.fromisoformat(now))
    handled = 0
    with Worker(
        make_sessionmaker(engine),
        registry,
        clock,
        worker_id=f"p{worker_no}",
        batch_size=25,
        concurrency=2,
    ) as worker:
        barrier.wait(timeout=60)
        while batch := worker.run_once():
            handled += batch
    engine.dispose()
    return handled


def test_four_worker_processes_run_every_job_exactly_once(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        session.execute(text("CREATE TABLE job_runs (job_key text NOT NULL UNIQUE)"))
        session.execute(
            insert(Job),
            [
                {
                    "store_id": STORE,
                    "kind": "test.run",
                    "key": f"job:{n:04d}",
                    "payload": {},
                    "status": JobStatus.PENDING.value,
                    "run_at": START,
                    "attempts": 0,
                    "max_attempts": 10,
                    "created_at": START,
                }
                for n in range(JOBS)
            ],
        )
    context = multiprocessing.get_context("spawn")

    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        barrier = manager.Barrier(PROCESSES)
        handled = pool.starmap(
            drain, [(database_url, START.isoformat(), n, barrier) for n in range(PROCESSES)]
        )

    with sessions() as session:
        runs = session.execute(text("SELECT count(*), count(DISTINCT job_key) FROM job_runs")).one()
    assert sum(handled) == JOBS
    assert all(count > 0 for count in handled), handled  # they really did compete
    assert tuple(runs) == (JOBS, JOBS)
    assert all_keys(sessions) == []
