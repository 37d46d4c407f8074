"""The worker settles each claimed job exactly as its handler (or its failure) says."""

from __future__ import annotations

import logging
import random
import threading
from datetime import timedelta

import pytest
from queue_factories import LEASE, SEED, START, STORE, add_job, all_keys, follow_up, get_job
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.queue import (
    ClaimedJob,
    JobStatus,
    Registry,
    Reschedule,
    Worker,
    WorkerStats,
)
from cartback.queue.backoff import backoff


def test_a_handler_returning_none_deletes_the_job_with_its_work(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        follow_up(session, job)

    add_job(sessions, clock, "cart:1")

    handled = worker.run_once()

    assert handled == 1
    assert all_keys(sessions) == ["cart:1:next"]
    assert (worker.stats.claimed, worker.stats.done) == (1, 1)


def test_a_reschedule_moves_the_job_and_gives_the_attempt_back(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register(
        "test.job", lambda session, job: Reschedule(START + timedelta(hours=8), "quiet hours")
    )
    add_job(sessions, clock, "cart:1")

    worker.run_once()

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.attempts, job.last_error, job.worker_id) == (
        JobStatus.PENDING,
        START + timedelta(hours=8),
        0,
        "quiet hours",
        None,
    )
    assert worker.stats.rescheduled == 1


def test_a_reschedule_that_counts_the_attempt_keeps_it(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register(
        "test.job",
        lambda session, job: Reschedule(START + timedelta(minutes=1), "429", count_attempt=True),
    )
    add_job(sessions, clock, "cart:1")

    worker.run_once()

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.attempts) == (
        JobStatus.PENDING,
        START + timedelta(minutes=1),
        1,
    )


def test_a_counted_reschedule_on_the_last_attempt_fails_the_job(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    registry.register(
        "test.job",
        lambda session, job: Reschedule(START + timedelta(minutes=1), "429", count_attempt=True),
    )
    add_job(sessions, clock, "cart:1", max_attempts=1)

    worker.run_once()

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.attempts, job.last_error) == (
        JobStatus.FAILED,
        1,
        "deferred with no attempts left: 429",
    )


def test_a_raising_handler_is_rolled_back_and_retried_after_a_backoff(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    registry: Registry,
    worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        follow_up(session, job)
        raise ConnectionError("smtp://mailer:s3cret@mail.example:25 refused")

    add_job(sessions, clock, "cart:1")

    with caplog.at_level(logging.WARNING, logger="cartback.queue"):
        worker.run_once()

    expected_run_at = START + backoff(1, rng=random.Random(SEED))
    assert all_keys(sessions) == ["cart:1"]  # the follow-up was rolled back
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.attempts, job.worker_id, job.last_error) == (
        JobStatus.PENDING,
        expected_run_at,
        1,
        None,
        "ConnectionError: smtp://***@mail.example:25 refused",
    )
    [record] = [r for r in caplog.records if r.getMessage() == "job.retry"]
    assert (record.job_id, record.job_kind, record.store_id, record.attempts) == (  # type: ignore[attr-defined]
        job.id,
        "test.job",
        STORE,
        1,
    )
    assert "s3cret" not in caplog.text
    assert worker.stats.retried == 1


def test_a_retried_job_runs_again_once_its_backoff_has_passed(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    calls: list[int] = []

    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        calls.append(job.attempts)
        if job.attempts == 1:
            raise RuntimeError("flaky")

    add_job(sessions, clock, "cart:1")
    worker.run_once()
    job = get_job(sessions, "cart:1")
    assert job is not None
    clock.set(job.run_at)

    worker.run_once()

    assert calls == [1, 2]
    assert all_keys(sessions) == []


def test_a_job_fails_after_max_attempts_and_is_never_claimed_again(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    registry: Registry,
    worker: Worker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        calls.append(job.attempts)
        raise RuntimeError("still broken")

    add_job(sessions, clock, "cart:1", max_attempts=2)
    caplog.set_level(logging.WARNING, logger="cartback.queue")
    worker.run_once()
    retry = get_job(sessions, "cart:1")
    assert retry is not None
    clock.set(retry.run_at)

    worker.run_once()
    failed_at = clock.now()
    clock.advance(timedelta(days=30))
    handled_later = worker.run_once()

    assert calls == [1, 2]
    assert handled_later == 0
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.attempts, job.last_error, job.run_at) == (
        JobStatus.FAILED,
        2,
        "RuntimeError: still broken",
        failed_at,
    )
    assert [(r.getMessage(), r.levelname) for r in caplog.records] == [
        ("job.retry", "WARNING"),
        ("job.failed", "ERROR"),
    ]
    assert (worker.stats.retried, worker.stats.failed) == (1, 1)


def test_a_job_of_an_unknown_kind_fails_without_retrying(
    sessions: sessionmaker[Session], clock: ManualClock, worker: Worker
) -> None:
    add_job(sessions, clock, "cart:1", kind="test.nobody")

    handled = worker.run_once()

    assert handled == 1
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.attempts, job.last_error) == (
        JobStatus.FAILED,
        1,
        "no handler for kind test.nobody",
    )


def test_a_handler_that_commits_midway_still_completes(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        follow_up(session, job, "intent")
        session.commit()  # e.g. record the send's intent before talking to SMTP
        follow_up(session, job, "outcome")

    add_job(sessions, clock, "cart:1")

    worker.run_once()

    assert all_keys(sessions) == ["cart:1:intent", "cart:1:outcome"]
    assert worker.stats.done == 1


def test_a_handler_that_commits_midway_then_raises_keeps_the_committed_part(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        follow_up(session, job, "intent")
        session.commit()
        follow_up(session, job, "outcome")
        raise TimeoutError("smtp timed out")

    add_job(sessions, clock, "cart:1")

    worker.run_once()

    assert all_keys(sessions) == ["cart:1", "cart:1:intent"]
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.attempts, job.last_error) == (
        JobStatus.PENDING,
        1,
        "TimeoutError: smtp timed out",
    )


def test_a_worker_that_lost_its_lease_rolls_back_instead_of_committing(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry, worker: Worker
) -> None:
    rescuer_registry = Registry()
    rescuer_registry.register("test.job", lambda session, job: Reschedule(START, "rescued"))
    rescuer = Worker(sessions, rescuer_registry, clock, worker_id="w2", concurrency=1)

    @registry.register("test.job")
    def slow(session: Session, job: ClaimedJob) -> None:
        clock.advance(LEASE)  # this handler outlives its lease ...
        assert rescuer.run_once() == 1  # ... and another worker takes the job over
        follow_up(session, job)

    add_job(sessions, clock, "cart:1")

    worker.run_once()

    assert all_keys(sessions) == ["cart:1"]  # the late worker's follow-up is gone
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.last_error, job.attempts) == (JobStatus.PENDING, "rescued", 1)
    assert worker.stats.lease_lost == 1


def test_run_once_spreads_a_batch_over_the_thread_pool(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry
) -> None:
    threads: set[str] = set()
    lock = threading.Lock()

    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        with lock:
            threads.add(threading.current_thread().name)
        follow_up(session, job)

    for n in range(30):
        add_job(sessions, clock, f"cart:{n:02d}")

    with Worker(sessions, registry, clock, batch_size=20, concurrency=4) as worker:
        first, second, third = worker.run_once(), worker.run_once(), worker.run_once()

    assert (first, second, third) == (20, 10, 0)
    assert all_keys(sessions) == sorted(f"cart:{n:02d}:next" for n in range(30))
    assert (worker.stats.claimed, worker.stats.done) == (30, 30)
    assert 1 <= len(threads) <= 4


def test_run_works_until_stopped_and_finishes_the_jobs_in_hand(
    sessions: sessionmaker[Session], clock: ManualClock, registry: Registry
) -> None:
    stop = threading.Event()
    done: list[str] = []

    @registry.register("test.job")
    def handle(session: Session, job: ClaimedJob) -> None:
        stop.set()  # asked to stop while the whole batch is in hand
        done.append(job.key)

    for n in range(10):
        add_job(sessions, clock, f"cart:{n}")
    stats = WorkerStats()
    worker = Worker(
        sessions, registry, clock, batch_size=10, concurrency=2, poll_interval=0.01, stats=stats
    )

    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    thread.join(timeout=30)

    assert not thread.is_alive()
    assert sorted(done) == [f"cart:{n}" for n in range(10)]
    assert all_keys(sessions) == []
    assert stats.done == 10
