"""The claim: due jobs only, oldest first, bounded, leased, rescued, given up."""

from __future__ import annotations

from datetime import timedelta

from queue_factories import START, STORE, add_job, get_job
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.queue import ClaimedJob, JobStatus
from cartback.queue.queries import LEASE_EXPIRED_ERROR, ClaimBatch, claim, claim_batch

LEASE = timedelta(minutes=5)


def _claim(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    *,
    limit: int = 100,
    worker_id: str = "w1",
    kinds: set[str] | None = None,
) -> list[ClaimedJob]:
    with transaction(sessions) as session:
        return claim(
            session, now=clock.now(), lease=LEASE, limit=limit, worker_id=worker_id, kinds=kinds
        )


def test_claim_returns_only_due_jobs_oldest_first_and_at_most_limit(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "due-1m", due_in=timedelta(minutes=-1))
    add_job(sessions, clock, "due-3m", due_in=timedelta(minutes=-3))
    add_job(sessions, clock, "due-now", due_in=timedelta(0))
    add_job(sessions, clock, "due-2m", due_in=timedelta(minutes=-2))
    add_job(sessions, clock, "later", due_in=timedelta(seconds=1))

    first = _claim(sessions, clock, limit=2)
    second = _claim(sessions, clock, limit=5)

    assert [job.key for job in first] == ["due-3m", "due-2m"]
    assert [job.due_at for job in first] == [
        START - timedelta(minutes=3),
        START - timedelta(minutes=2),
    ]
    assert [job.key for job in second] == ["due-1m", "due-now"]


def test_claim_marks_the_job_running_with_its_lease_as_run_at(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1", kind="cart.check", payload={"cart": "c1"}, max_attempts=3)

    [job] = _claim(sessions, clock)

    assert job == ClaimedJob(
        id=job.id,
        store_id=STORE,
        kind="cart.check",
        key="cart:1",
        payload={"cart": "c1"},
        attempts=1,
        max_attempts=3,
        due_at=START,
    )
    row = get_job(sessions, "cart:1")
    assert row is not None
    assert (row.status, row.run_at, row.attempts, row.worker_id) == (
        JobStatus.RUNNING,
        START + LEASE,
        1,
        "w1",
    )


def test_claim_filters_by_kind(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    add_job(sessions, clock, "a", kind="kind.a")
    add_job(sessions, clock, "b", kind="kind.b")

    claimed = _claim(sessions, clock, kinds={"kind.b"})

    assert [job.key for job in claimed] == ["b"]
    row = get_job(sessions, "a")
    assert row is not None
    assert row.status == JobStatus.PENDING


def test_a_claimed_job_is_not_claimed_again_before_its_lease_ends(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1")
    _claim(sessions, clock, worker_id="w1")
    clock.advance(LEASE - timedelta(microseconds=1))

    again = _claim(sessions, clock, worker_id="w2")

    assert again == []
    row = get_job(sessions, "cart:1")
    assert row is not None
    assert (row.worker_id, row.attempts) == ("w1", 1)


def test_a_crashed_workers_job_is_claimed_again_once_its_lease_ends(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1")
    _claim(sessions, clock, worker_id="w1")  # ... and w1 dies without settling it
    clock.advance(LEASE)

    [rescued] = _claim(sessions, clock, worker_id="w2")

    assert (rescued.key, rescued.attempts, rescued.due_at) == ("cart:1", 2, START + LEASE)
    row = get_job(sessions, "cart:1")
    assert row is not None
    assert (row.status, row.worker_id, row.run_at) == (
        JobStatus.RUNNING,
        "w2",
        START + 2 * LEASE,
    )


def test_a_job_whose_last_attempt_lost_its_lease_fails_instead_of_running(
    sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    add_job(sessions, clock, "cart:1", max_attempts=1)
    _claim(sessions, clock, worker_id="w1")
    clock.advance(LEASE)

    with transaction(sessions) as session:
        batch = claim_batch(session, now=clock.now(), lease=LEASE, limit=10, worker_id="w2")
    clock.advance(timedelta(days=1))
    later = _claim(sessions, clock, worker_id="w3")

    assert batch == ClaimBatch(jobs=[], given_up=[batch.given_up[0]])
    assert (batch.given_up[0].key, batch.given_up[0].attempts) == ("cart:1", 1)
    assert later == []
    row = get_job(sessions, "cart:1")
    assert row is not None
    assert (row.status, row.attempts, row.last_error, row.worker_id, row.run_at) == (
        JobStatus.FAILED,
        1,
        LEASE_EXPIRED_ERROR,
        "w1",
        START + LEASE,
    )
