"""Batchable handlers: the jobs of one claim share a transaction, a SAVEPOINT each."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import pytest
from queue_factories import LEASE, SEED, START, add_job, all_keys, follow_up, get_job
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.queue import ClaimedJob, JobStatus, Registry, Reschedule, Worker
from cartback.queue.backoff import backoff


class _Commits:
    """Counts COMMITs on the engine behind ``sessions``."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.count = 0
        self.engine = sessions.kw["bind"]
        event.listen(self.engine, "commit", self._seen)

    def _seen(self, _connection: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "commit", self._seen)


def test_a_batch_runs_in_one_transaction_with_one_commit(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register("test.job", follow_up, batched=True)
    for n in range(5):
        add_job(sessions, clock, f"cart:{n}")
    commits = _Commits(sessions)
    try:
        handled = worker.run_once()
    finally:
        commits.close()

    assert handled == 5
    assert commits.count == 2  # the claim, then the whole batch
    assert all_keys(sessions) == [f"cart:{n}:next" for n in range(5)]
    assert (worker.stats.claimed, worker.stats.done) == (5, 5)


def test_a_raising_job_in_a_batch_rolls_back_only_its_own_work(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    registry: Registry,
    worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @registry.register("test.job", batched=True)
    def handle(session: Session, job: ClaimedJob) -> None:
        follow_up(session, job)
        if job.key == "cart:1":
            raise ConnectionError("smtp://mailer:s3cret@mail.example:25 refused")

    for n in range(3):
        add_job(sessions, clock, f"cart:{n}")

    with caplog.at_level(logging.WARNING, logger="cartback.queue"):
        worker.run_once()

    # the others' work and completion committed; cart:1's follow-up is gone
    assert all_keys(sessions) == ["cart:0:next", "cart:1", "cart:2:next"]
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.attempts, job.worker_id, job.last_error) == (
        JobStatus.PENDING,
        START + backoff(1, rng=random.Random(SEED)),
        1,
        None,
        "ConnectionError: smtp://***@mail.example:25 refused",
    )
    assert [r.getMessage() for r in caplog.records] == ["job.retry"]
    assert "s3cret" not in caplog.text
    assert (worker.stats.done, worker.stats.retried) == (2, 1)


def test_a_job_in_a_batch_fails_once_its_attempts_are_used_up(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    @registry.register("test.job", batched=True)
    def handle(session: Session, job: ClaimedJob) -> None:
        if job.key == "cart:0":
            raise RuntimeError("still broken")
        follow_up(session, job)

    add_job(sessions, clock, "cart:0", max_attempts=1)
    add_job(sessions, clock, "cart:1")

    worker.run_once()

    job = get_job(sessions, "cart:0")
    assert job is not None
    assert (job.status, job.attempts, job.last_error, job.run_at) == (
        JobStatus.FAILED,
        1,
        "RuntimeError: still broken",
        START,
    )
    assert all_keys(sessions) == ["cart:0", "cart:1:next"]
    assert (worker.stats.done, worker.stats.failed) == (1, 1)


def test_a_reschedule_in_a_batch_moves_the_job_and_keeps_the_others_work(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    @registry.register("test.job", batched=True)
    def handle(session: Session, job: ClaimedJob) -> Reschedule | None:
        follow_up(session, job)
        if job.key == "cart:1":
            return Reschedule(START + timedelta(hours=8), "activity since")
        return None

    for n in range(3):
        add_job(sessions, clock, f"cart:{n}")

    worker.run_once()

    assert all_keys(sessions) == ["cart:0:next", "cart:1", "cart:1:next", "cart:2:next"]
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.attempts, job.last_error, job.worker_id) == (
        JobStatus.PENDING,
        START + timedelta(hours=8),
        0,
        "activity since",
        None,
    )
    assert (worker.stats.done, worker.stats.rescheduled) == (2, 1)


def test_batched_and_per_job_kinds_of_one_claim_both_settle(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register("test.job", follow_up, batched=True)
    registry.register("test.alone", lambda s, j: follow_up(s, j))
    for n in range(3):
        add_job(sessions, clock, f"cart:{n}")
        add_job(sessions, clock, f"alone:{n}", kind="test.alone")

    assert worker.run_once() == 6

    assert all_keys(sessions) == sorted(
        [f"cart:{n}:next" for n in range(3)] + [f"alone:{n}:next" for n in range(3)]
    )
    assert worker.stats.done == 6


def test_a_lost_lease_in_a_batch_rolls_back_that_jobs_work_and_keeps_the_others(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    calls: list[str] = []

    @registry.register("test.job", batched=True)
    def handle(session: Session, job: ClaimedJob) -> None:
        calls.append(job.key)
        follow_up(session, job)

    for n in range(3):
        add_job(sessions, clock, f"cart:{n}")
    claimed = worker.claim()
    # w1 is slow to start: its lease on every job runs out, and w2 takes over cart:1
    clock.advance(LEASE)
    rescuer_registry = Registry()
    rescuer_registry.register("test.job", lambda session, job: Reschedule(START, "rescued"))
    rescuer = Worker(sessions, rescuer_registry, clock, worker_id="w2", batch_size=1)
    with rescuer:
        assert rescuer.run_once() == 1
    [taken] = [k for k in ("cart:0", "cart:1", "cart:2") if _worker_of(sessions, k) is None]
    assert sorted(job.key for job in claimed.jobs) == ["cart:0", "cart:1", "cart:2"]

    handled = worker.run_claimed(claimed)

    assert handled == 3
    # the job taken over keeps the rescuer's reschedule; w1's follow-up for it is gone
    others = [k for k in ("cart:0", "cart:1", "cart:2") if k != taken]
    assert all_keys(sessions) == sorted([taken] + [f"{k}:next" for k in others])
    job = get_job(sessions, taken)
    assert job is not None
    assert (job.status, job.last_error, job.attempts) == (JobStatus.PENDING, "rescued", 1)
    assert (worker.stats.done, worker.stats.lease_lost) == (2, 1)
    # the batch was rolled back; the others ran again, one by one; the lost one did not
    assert sorted(calls) == sorted(["cart:0", "cart:1", "cart:2", *others])


def _worker_of(sessions: sessionmaker[Session], key: str) -> str | None:
    job = get_job(sessions, key)
    assert job is not None
    return job.worker_id


def test_a_batched_handler_of_an_unregistered_kind_still_fails(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register("test.job", follow_up, batched=True)
    add_job(sessions, clock, "cart:0")
    add_job(sessions, clock, "cart:1", kind="test.nobody")
    add_job(sessions, clock, "cart:2")

    worker.run_once()

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.last_error) == (JobStatus.FAILED, "no handler for kind test.nobody")
    assert all_keys(sessions) == ["cart:0:next", "cart:1", "cart:2:next"]


def test_mark_batched_needs_a_registered_kind() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="no handler"):
        registry.mark_batched("test.job")
    registry.register("test.job", follow_up)
    assert not registry.is_batched("test.job")
    registry.mark_batched("test.job")
    assert registry.is_batched("test.job")


def test_a_batch_whose_transaction_fails_runs_each_job_alone_at_once(
    sessions: sessionmaker[Session],
    registry: Registry,
    clock: ManualClock,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sqlalchemy.exc import OperationalError

    from cartback.queue import queries

    registry.register("test.cheap", follow_up, batched=True)
    for n in range(3):
        add_job(sessions, clock, f"cart:{n}", kind="test.cheap")
    real = queries.finish_many
    calls = {"n": 0}

    def fails_once(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("DELETE FROM jobs ...", {}, Exception("connection lost"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(queries, "finish_many", fails_once)

    assert worker.run_once() == 3

    # no lease had to run out: every job ran again alone, and its work committed once
    assert all_keys(sessions) == ["cart:0:next", "cart:1:next", "cart:2:next"]
    assert (worker.stats.done, worker.stats.lease_lost) == (3, 0)
