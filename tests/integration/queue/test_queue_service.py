"""enqueue / cancel / due_count / oldest_due / prune_failed on a real database."""

from __future__ import annotations

from datetime import timedelta

from queue_factories import START, STORE, add_job, all_keys, get_job
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.queue import (
    Job,
    JobStatus,
    cancel,
    due_count,
    enqueue,
    oldest_due,
    prune_failed,
)
from cartback.queue.queries import claim


def _claim_all(sessions: sessionmaker[Session], clock: ManualClock) -> list[str]:
    with transaction(sessions) as session:
        jobs = claim(
            session, now=clock.now(), lease=timedelta(minutes=5), limit=100, worker_id="w1"
        )
    return [job.key for job in jobs]


def _set_status(sessions: sessionmaker[Session], key: str, status: JobStatus) -> None:
    with transaction(sessions) as session:
        session.execute(update(Job).where(Job.key == key).values(status=status.value))


def test_enqueue_twice_with_the_same_key_keeps_the_first_job(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1", due_in=timedelta(hours=1), payload={"v": 1})

    add_job(sessions, clock, "cart:1", due_in=timedelta(hours=2), payload={"v": 2})

    assert all_keys(sessions) == ["cart:1"]
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.run_at, job.payload) == (START + timedelta(hours=1), {"v": 1})


def test_enqueue_only_flushes_so_a_rollback_leaves_no_job(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    with sessions() as session:
        enqueue(session, store_id=STORE, kind="k", key="cart:1", run_at=START, now=START)
        session.rollback()

    assert all_keys(sessions) == []


def test_replace_moves_a_pending_job_and_starts_it_afresh(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1", due_in=timedelta(hours=1), payload={"v": 1})
    with transaction(sessions) as session:
        session.execute(
            update(Job).where(Job.key == "cart:1").values(attempts=3, last_error="boom")
        )

    with transaction(sessions) as session:
        enqueue(
            session,
            store_id=STORE,
            kind="test.job",
            key="cart:1",
            run_at=START + timedelta(hours=3),
            payload={"v": 2},
            replace=True,
            now=START,
        )

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.payload, job.attempts, job.last_error) == (
        JobStatus.PENDING,
        START + timedelta(hours=3),
        {"v": 2},
        0,
        None,
    )


def test_replace_does_not_disturb_a_running_job(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1", payload={"v": 1})
    assert _claim_all(sessions, clock) == ["cart:1"]

    with transaction(sessions) as session:
        enqueue(
            session,
            store_id=STORE,
            kind="test.job",
            key="cart:1",
            run_at=START + timedelta(hours=3),
            payload={"v": 2},
            replace=True,
            now=START,
        )

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at, job.payload, job.attempts, job.worker_id) == (
        JobStatus.RUNNING,
        START + timedelta(minutes=5),
        {"v": 1},
        1,
        "w1",
    )


def test_replace_brings_a_failed_job_back_to_pending(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1")
    _set_status(sessions, "cart:1", JobStatus.FAILED)

    with transaction(sessions) as session:
        enqueue(
            session,
            store_id=STORE,
            kind="test.job",
            key="cart:1",
            run_at=START + timedelta(hours=1),
            replace=True,
            now=START,
        )

    job = get_job(sessions, "cart:1")
    assert job is not None
    assert (job.status, job.run_at) == (JobStatus.PENDING, START + timedelta(hours=1))


def test_cancel_deletes_a_pending_job(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    add_job(sessions, clock, "cart:1", due_in=timedelta(hours=1))
    add_job(sessions, clock, "cart:2", due_in=timedelta(hours=1))

    with transaction(sessions) as session:
        cancelled = cancel(session, store_id=STORE, key="cart:1")

    assert cancelled is True
    assert all_keys(sessions) == ["cart:2"]


def test_cancel_of_a_missing_key_or_another_store_deletes_nothing(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1")

    with transaction(sessions) as session:
        missing = cancel(session, store_id=STORE, key="cart:404")
        other_store = cancel(session, store_id="st_other", key="cart:1")

    assert (missing, other_store) == (False, False)
    assert all_keys(sessions) == ["cart:1"]


def test_cancel_leaves_a_running_job(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    add_job(sessions, clock, "cart:1")
    _claim_all(sessions, clock)

    with transaction(sessions) as session:
        cancelled = cancel(session, store_id=STORE, key="cart:1")

    assert cancelled is False
    job = get_job(sessions, "cart:1")
    assert job is not None
    assert job.status == JobStatus.RUNNING


def test_due_count_and_oldest_due_see_only_due_claimable_jobs(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "a", due_in=timedelta(minutes=-10))
    add_job(sessions, clock, "b", due_in=timedelta(minutes=-1))
    add_job(sessions, clock, "c", due_in=timedelta(0))
    add_job(sessions, clock, "later", due_in=timedelta(hours=1))
    add_job(sessions, clock, "failed", due_in=timedelta(minutes=-30))
    _set_status(sessions, "failed", JobStatus.FAILED)

    with sessions() as session:
        counted = due_count(session, now=clock.now())
        oldest = oldest_due(session, now=clock.now())

    assert (counted, oldest) == (3, START - timedelta(minutes=10))


def test_due_count_and_oldest_due_when_nothing_is_due(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "later", due_in=timedelta(seconds=1))

    with sessions() as session:
        assert (due_count(session, now=clock.now()), oldest_due(session, now=clock.now())) == (
            0,
            None,
        )


def test_prune_failed_deletes_the_oldest_failed_jobs_before_the_cutoff(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    for key, hours in [("f1", -30), ("f2", -20), ("f3", -10), ("f4", -1)]:
        add_job(sessions, clock, key, due_in=timedelta(hours=hours))
        _set_status(sessions, key, JobStatus.FAILED)
    add_job(sessions, clock, "pending", due_in=timedelta(hours=-40))

    with transaction(sessions) as session:
        pruned = prune_failed(session, before=START - timedelta(hours=5), limit=2)

    assert pruned == 2
    assert all_keys(sessions) == ["f3", "f4", "pending"]
