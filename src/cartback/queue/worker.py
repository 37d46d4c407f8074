"""The worker: claim a batch of due jobs, then run and settle them.

One claim takes up to ``batch_size`` jobs in one short transaction (batches of
10-100 are what make the claim cheap: performance.md B4, E.4). Jobs of kinds
registered ``batched=True`` then share one transaction, a SAVEPOINT each, one
guarded DELETE for all that are done and one commit (:meth:`Worker._settle_batch`;
a lost lease rolls the batch back and the rest are settled one by one). Every
other job runs with its own session and transaction -- on a small thread pool on
PostgreSQL, on the claiming thread on SQLite (one writer: ADR 0002):

- the handler returns ``None``: the job row is deleted in the handler's
  transaction, which then commits -- the work and "done" commit together;
- it returns a :class:`Reschedule`: the row goes back to pending at its
  ``run_at``, again in the handler's transaction;
- it raises: the handler's work is rolled back and, in a fresh transaction,
  the job goes back to pending after a backoff, or to failed once its
  attempts are used up;
- the worker dies: nothing is committed, the job's run_at is its lease end,
  and another worker claims it once the lease runs out.

Every settling statement is guarded by the lease (status running, this worker,
this attempt): if the lease ran out and someone else took the job, the late
worker's work is rolled back instead of committed (``job.lease_lost``). A
handler that committed midway (the email send records its intent first) has
already committed that part; the send's own bookkeeping makes a second run
harmless.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.clock import Clock
from cartback.core.db import transaction
from cartback.queue import queries
from cartback.queue.backoff import backoff
from cartback.queue.handlers import ClaimedJob, Handler, Registry, Reschedule

__all__ = ["ClaimedJob", "Handler", "Outcome", "Registry", "Reschedule", "Worker", "WorkerStats"]

logger = logging.getLogger("cartback.queue")

# Enough to tell one failure from another on a dashboard; a traceback belongs in
# the logs of the code that raised, not in a table row.
MAX_ERROR_LENGTH = 500
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s:@]+(:[^/\s@]*)?@")
_SECRET_PAIRS = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)=\S+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


class Outcome(StrEnum):
    DONE = "done"
    RESCHEDULED = "rescheduled"
    RETRIED = "retried"
    FAILED = "failed"
    LEASE_LOST = "lease_lost"


@dataclass
class WorkerStats:
    """Counters the app turns into metrics (subclass and override :meth:`observe`).

    Thread-safe. ``claimed`` counts jobs taken to run; every run ends in exactly
    one outcome. Jobs a claim gave up on (lease expired on the last attempt)
    count as ``failed`` without being claimed.
    """

    claimed: int = 0
    done: int = 0
    rescheduled: int = 0
    retried: int = 0
    failed: int = 0
    lease_lost: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_claimed(self, count: int) -> None:
        with self._lock:
            self.claimed += count

    def observe(self, *, kind: str, outcome: Outcome, seconds: float) -> None:
        """One job ended with ``outcome`` after ``seconds`` (0 when it never ran)."""
        with self._lock:
            setattr(self, outcome.value, getattr(self, outcome.value) + 1)
            self.seconds += seconds


@dataclass(frozen=True)
class _Settled:
    """How one job ended, and what to log about it once that is committed."""

    outcome: Outcome
    error: str | None = None
    run_at: str | None = None


@dataclass(frozen=True)
class _LeaseLost:
    """A batch rolled back because these jobs' leases were lost."""

    ids: frozenset[int]


def short_error(exc: BaseException) -> str:
    """A one-line description of ``exc`` fit for a table row and a log line.

    >>> short_error(ValueError("bad postgresql://app:hunter2@db/x for ann@example.com"))
    'ValueError: bad postgresql://***@db/x for ***@***'
    """
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _SECRET_PAIRS.sub(r"\1=***", text)
    text = _EMAIL.sub("***@***", text)
    return text[:MAX_ERROR_LENGTH]


class Worker:
    """Runs due jobs with the handlers in ``registry``.

    ``lease`` must be longer than any handler runs; a handler still running when
    its lease ends may be run a second time by another worker.
    """

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        registry: Registry,
        clock: Clock,
        *,
        worker_id: str | None = None,
        batch_size: int = 50,
        concurrency: int = 4,
        lease: timedelta = timedelta(minutes=5),
        poll_interval: float = 1.0,
        stats: WorkerStats | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        self.sessionmaker = sessionmaker
        self.registry = registry
        self.clock = clock
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.poll_interval = poll_interval
        self.stats = stats or WorkerStats()
        self._rng = rng or random.Random()
        self._pool: ThreadPoolExecutor | None = None
        bind = sessionmaker.kw.get("bind")
        self._engine: Engine | None = bind if isinstance(bind, Engine) else None
        # Cheap jobs share one transaction per claim (batched kinds), so extra threads
        # would only queue on SQLite's one write lock. Per-job kinds — sends — spend
        # their time talking to a provider with no transaction open, so they keep
        # ``concurrency`` threads on every backend: one store's slow mail server must not
        # hold up another store's sends. ADR 0002.
        self.threads = concurrency

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread pool (after the jobs in hand finish)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; the jobs in hand finish first."""
        logger.info("worker.started", extra={"worker_id": self.worker_id})
        try:
            while not stop.is_set():
                try:
                    handled = self.run_once()
                except Exception as exc:  # the database went away: keep polling
                    logger.error(
                        "worker.claim_failed",
                        extra={"worker_id": self.worker_id, "error": short_error(exc)},
                    )
                    handled = 0
                if handled == 0:
                    # The poll interval, in real seconds; due times come from the clock.
                    stop.wait(self.poll_interval)
        finally:
            self.close()
            logger.info("worker.stopped", extra={"worker_id": self.worker_id})

    def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs it settled."""
        return self.run_claimed(self.claim())

    def claim(self) -> queries.ClaimBatch:
        """Claim one batch of due jobs (committed at once); :meth:`run_claimed` runs it."""
        now = self.clock.now()
        if self._engine is not None:  # Core only: no ORM session needed for the claim
            with self._engine.begin() as connection:
                return queries.claim_batch(
                    connection,
                    now=now,
                    lease=self.lease,
                    limit=self.batch_size,
                    worker_id=self.worker_id,
                )
        with transaction(self.sessionmaker) as session:
            return queries.claim_batch(
                session, now=now, lease=self.lease, limit=self.batch_size, worker_id=self.worker_id
            )

    def run_claimed(self, batch: queries.ClaimBatch) -> int:
        """Run and settle the jobs of one claim; returns how many it settled.

        Jobs of batchable kinds share one transaction (:meth:`_run_batch`); the
        others run one transaction each, on the thread pool when there is one.
        """
        for job in batch.given_up:
            self._log_failed(job, queries.LEASE_EXPIRED_ERROR)
            self.stats.observe(kind=job.kind, outcome=Outcome.FAILED, seconds=0.0)
        self.stats.record_claimed(len(batch.jobs))
        together = [job for job in batch.jobs if self.registry.is_batched(job.kind)]
        alone = [job for job in batch.jobs if not self.registry.is_batched(job.kind)]
        if self.threads > 1 and len(alone) > 1:
            # the per-job jobs run on the pool while this thread runs the shared batch
            running = [self._executor().submit(self._run_job, job) for job in alone]
            self._run_batch(together)
            for future in running:
                future.result()
        else:
            self._run_batch(together)
            for job in alone:
                self._run_job(job)
        return len(batch.jobs) + len(batch.given_up)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.worker_id)
        return self._pool

    # --- one transaction per job ---------------------------------------------------

    def _run_job(self, job: ClaimedJob) -> None:
        started = time.perf_counter()
        try:
            outcome = self._settle(job)
        except Exception as exc:  # settling itself failed: the lease will rescue the job
            logger.error("job.settle_failed", extra=self._fields(job, error=short_error(exc)))
            return
        seconds = time.perf_counter() - started
        self.stats.observe(kind=job.kind, outcome=outcome, seconds=seconds)
        logger.debug("job.settled", extra=self._fields(job, outcome=str(outcome), seconds=seconds))

    def _settle(self, job: ClaimedJob) -> Outcome:
        handler = self.registry.get(job.kind)
        with self.sessionmaker() as session:
            if handler is None:
                settled = self._fail(session, job, f"no handler for kind {job.kind}")
                return self._committed(session, job, settled)
            try:
                result = handler(session, job)
                settled = self._record(session, job, result)
            except Exception as exc:
                session.rollback()
                settled = self._after_error(session, job, exc)
            return self._committed(session, job, settled)

    def _committed(self, session: Session, job: ClaimedJob, settled: _Settled) -> Outcome:
        """Commit one job's settle (roll back if its lease was lost), then log it."""
        if settled.outcome is Outcome.LEASE_LOST:
            session.rollback()
            logger.warning("job.lease_lost", extra=self._fields(job))
            return settled.outcome
        session.commit()
        self._log_settled(job, settled)
        return settled.outcome

    # --- one transaction for the batchable jobs of a claim ---------------------------

    def _run_batch(self, jobs: list[ClaimedJob]) -> None:
        if not jobs:
            return
        if len(jobs) == 1:  # nothing to share: a savepoint would only cost a round trip
            self._run_job(jobs[0])
            return
        try:
            settled = self._settle_batch(jobs)
        except Exception as exc:
            # The shared transaction failed as a whole (a deadlock, a dropped connection):
            # nothing of it committed, and the jobs are still ours under their leases, so
            # each runs again on its own rather than waiting for its lease to run out.
            logger.warning("job.batch_failed", extra={"jobs": len(jobs), "error": short_error(exc)})
            for job in jobs:
                self._run_job(job)
            return
        if isinstance(settled, _LeaseLost):
            # Some job's lease was lost, so the whole batch was rolled back (that job's
            # work must not commit). Rare: settle the others one by one, as if unbatched.
            for job in jobs:
                if job.id in settled.ids:
                    logger.warning("job.lease_lost", extra=self._fields(job))
                    self.stats.observe(kind=job.kind, outcome=Outcome.LEASE_LOST, seconds=0.0)
                else:
                    self._run_job(job)
            return
        for job, one, seconds in settled:
            self._log_settled(job, one)
            self.stats.observe(kind=job.kind, outcome=one.outcome, seconds=seconds)
            logger.debug(
                "job.settled", extra=self._fields(job, outcome=str(one.outcome), seconds=seconds)
            )

    def _settle_batch(
        self, jobs: list[ClaimedJob]
    ) -> list[tuple[ClaimedJob, _Settled, float]] | _LeaseLost:
        """Run ``jobs`` in one transaction, each in a SAVEPOINT; one DELETE, one commit.

        A job that raises rolls back only its savepoint and is retried or failed in
        the same transaction. If any lease was lost, everything is rolled back and
        the jobs whose lease was lost are returned.
        """
        settled: list[tuple[ClaimedJob, _Settled, float]] = []
        done: list[ClaimedJob] = []
        with self.sessionmaker() as session:
            for job in jobs:
                handler = self.registry.get(job.kind)
                assert handler is not None  # only registered kinds are batchable
                started = time.perf_counter()
                try:
                    with session.begin_nested():
                        result = handler(session, job)
                except Exception as exc:
                    one = self._after_error(session, job, exc)
                else:
                    if result is None:
                        done.append(job)
                        one = _Settled(Outcome.DONE)
                    else:
                        one = self._record(session, job, result)
                if one.outcome is Outcome.LEASE_LOST:
                    session.rollback()
                    return _LeaseLost(frozenset({job.id}))
                settled.append((job, one, time.perf_counter() - started))
            finished = queries.finish_many(session, done, worker_id=self.worker_id)
            if len(finished) != len(done):
                session.rollback()
                return _LeaseLost(frozenset(job.id for job in done if job.id not in finished))
            session.commit()
        return settled

    # --- what a handler's result or failure means for its job row ----------------------

    def _record(self, session: Session, job: ClaimedJob, result: Reschedule | None) -> _Settled:
        if result is None:
            done = queries.finish(session, job, worker_id=self.worker_id)
            return _Settled(Outcome.DONE if done else Outcome.LEASE_LOST)
        if result.count_attempt and job.attempts >= job.max_attempts:
            return self._fail(session, job, f"deferred with no attempts left: {result.reason}")
        moved = queries.reschedule(
            session,
            job,
            worker_id=self.worker_id,
            run_at=result.run_at,
            attempts=job.attempts if result.count_attempt else job.attempts - 1,
            reason=result.reason[:MAX_ERROR_LENGTH],
        )
        return _Settled(Outcome.RESCHEDULED if moved else Outcome.LEASE_LOST)

    def _after_error(self, session: Session, job: ClaimedJob, exc: Exception) -> _Settled:
        """The handler raised (its work is already rolled back): retry later, or fail."""
        error = short_error(exc)
        if job.attempts >= job.max_attempts:
            return self._fail(session, job, error)
        run_at = self.clock.now() + backoff(job.attempts, rng=self._rng)
        moved = queries.reschedule(
            session,
            job,
            worker_id=self.worker_id,
            run_at=run_at,
            attempts=job.attempts,
            reason=error,
        )
        if not moved:
            return _Settled(Outcome.LEASE_LOST)
        return _Settled(Outcome.RETRIED, error=error, run_at=run_at.isoformat())

    def _fail(self, session: Session, job: ClaimedJob, error: str) -> _Settled:
        failed = queries.fail(
            session, job, worker_id=self.worker_id, now=self.clock.now(), error=error
        )
        return _Settled(Outcome.FAILED, error=error) if failed else _Settled(Outcome.LEASE_LOST)

    def _log_settled(self, job: ClaimedJob, settled: _Settled) -> None:
        """Log what needs a person's eye, once its settle has committed."""
        if settled.outcome is Outcome.RETRIED:
            logger.warning(
                "job.retry", extra=self._fields(job, error=settled.error, run_at=settled.run_at)
            )
        elif settled.outcome is Outcome.FAILED and settled.error is not None:
            self._log_failed(job, settled.error)

    def _log_failed(self, job: ClaimedJob, error: str) -> None:
        logger.error("job.failed", extra=self._fields(job, error=error))

    def _fields(self, job: ClaimedJob, **more: object) -> dict[str, object]:
        return {
            "worker_id": self.worker_id,
            "job_id": job.id,
            "job_kind": job.kind,
            "store_id": job.store_id,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            **more,
        }
