"""The worker: claim a batch of due jobs, then run and settle them.

One claim takes up to ``batch_size`` jobs in one short transaction (batches of
10-100 are what make the claim cheap: performance.md B4, E.4). Jobs of kinds
registered ``batched=True`` then share one transaction, one guarded DELETE for all
that are done and one commit (:meth:`Worker._run_batch`; a job that raises makes
the round run again with a SAVEPOINT per job; a lost lease rolls the round back and
the rest are settled one by one). Every other job runs with its own session and
transaction, on a small thread pool when ``concurrency`` > 1:

- the handler returns ``None``: the job row is deleted in the handler's
  transaction, which then commits -- the work and "done" commit together;
- it returns a :class:`Reschedule`: the row goes back to pending at its
  ``run_at``, again in the handler's transaction;
- it returns a :class:`Deliver`: its work so far commits (a send's intent), the
  call runs with no transaction open, and ``then`` continues in a new
  transaction, whose result settles the job (batched kinds: the calls of a round
  run at the same time, and their ``then`` share one more transaction);
- it raises: the handler's work is rolled back and, in a fresh transaction,
  the job goes back to pending after a backoff, or to failed once its
  attempts are used up;
- the worker dies: nothing is committed, the job's run_at is its lease end,
  and another worker claims it once the lease runs out.

Every settling statement is guarded by the lease (status running, this worker,
this attempt): if the lease ran out and someone else took the job, the late
worker's work is rolled back instead of committed (``job.lease_lost``). Work
committed before a call (the email send records its intent first) stays; the
send's own bookkeeping makes a second run harmless.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from cartback.core.clock import Clock
from cartback.core.db import transaction
from cartback.queue import queries
from cartback.queue.backoff import backoff
from cartback.queue.handlers import (
    ClaimedJob,
    Deliver,
    Delivered,
    Handler,
    Registry,
    Reschedule,
    deliver,
)

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
        name = str(outcome)  # the counter's name: a StrEnum's str is its value
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)
            self.seconds += seconds


@dataclass(frozen=True)
class _Settled:
    """How one job ended, and what to log about it once that is committed."""

    outcome: Outcome
    error: str | None = None
    run_at: str | None = None


# How many jobs of one shared round may ask for a provider call before the round
# commits and makes them. Bounds how long a round holds the one SQLite writer (and,
# on PostgreSQL, the rows it locked) while it renders: ~1-2 ms a message.
MAX_SHARED_CALLS = 16

_Work = Callable[[Session], "Reschedule | Deliver | None"]


@dataclass
class _Round:
    """One shared transaction's result: jobs settled, and jobs waiting for a call."""

    settled: list[tuple[ClaimedJob, _Settled, float]] = field(default_factory=list)
    pending: list[tuple[ClaimedJob, Deliver, float]] = field(default_factory=list)


def _then(step: Deliver, delivered: Delivered) -> _Work:
    return lambda session: step.then(session, delivered)


_DONE = _Settled(Outcome.DONE)
_LEASE_LOST = Outcome.LEASE_LOST


class _HandlerRaised(Exception):
    """A handler of a batch raised in the run without savepoints: run it again with them."""


@dataclass(frozen=True)
class _LeaseLost:
    """A batch rolled back because these jobs' leases were lost."""

    ids: frozenset[int]


class _WriterTurns:
    """SQLite only: the worker's threads take turns at the one writer in Python.

    Every write transaction there is ``BEGIN IMMEDIATE``; a thread that finds the writer
    busy waits in SQLite's busy handler, which sleeps 1, 2, 5, 10... ms between tries,
    so with several threads most of a send went to sleeping while the lock was long
    free (bench/send.py: 4 threads ran slower than 1). A thread that waits here instead
    is woken the moment the holder commits. Held from the start of a session's
    transaction (before its BEGIN) to its end; never across a provider call, which
    runs between the intent's commit and the outcome's transaction (ADR 0004). Only
    this worker's transactions take turns; any other writer still meets them at
    SQLite's lock. Reentrant, and bounded like the busy timeout, so a thread that
    opened a second transaction while holding one fails instead of hanging.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self._lock = threading.RLock()
        self._timeout = timeout
        self._held: set[int] = set()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise TimeoutError("no turn at the SQLite writer within the busy timeout")

    def sessions(self, original: sessionmaker[Session]) -> sessionmaker[Session]:
        """A sessionmaker like ``original`` whose root transactions take turns."""
        made: sessionmaker[Session] = sessionmaker(class_=original.class_, **original.kw)
        event.listen(made, "after_transaction_create", self._began)
        event.listen(made, "after_transaction_end", self._ended)
        return made

    def _began(self, _session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            self.acquire()
            self._held.add(id(transaction))

    def _ended(self, _session: Session, transaction: SessionTransaction) -> None:
        if id(transaction) in self._held:
            self._held.discard(id(transaction))
            self._lock.release()


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
        self._held = threading.local()
        self._held_all: list[Connection] = []
        self._held_lock = threading.Lock()
        bind = sessionmaker.kw.get("bind")
        self._engine: Engine | None = bind if isinstance(bind, Engine) else None
        self._turns: _WriterTurns | None = None
        self._sessions = sessionmaker
        if self._engine is not None and self._engine.dialect.name == "sqlite":
            self._turns = _WriterTurns()
            self._sessions = self._turns.sessions(sessionmaker)
        # Batchable jobs share transactions on the claiming thread, so extra threads
        # would only queue on SQLite's one write lock. Per-job kinds, and the provider
        # calls of batchable ones (sends), spend their time talking to a provider with no
        # transaction open, so they get ``concurrency`` threads on every backend: one
        # store's slow mail server must not hold up another store's sends. ADR 0002.
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
        """Stop the thread pool (after the jobs in hand finish); give back connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._held_lock:
            held, self._held_all = self._held_all, []
        for connection in held:
            connection.close()
        self._held = threading.local()

    # --- the claiming thread's own connection ----------------------------------------
    #
    # The claim and the shared batch of each run_once use one connection, kept by the
    # claiming thread between calls: checking one out of the pool twice a batch (with
    # PostgreSQL's pre-ping, a round trip each) cost as much as the claim itself. After
    # any error it goes back to the pool, and the next call checks out a fresh one.

    def _connection(self) -> Connection | None:
        if self._engine is None:
            return None
        connection: Connection | None = getattr(self._held, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            connection = self._engine.connect()
            self._held.connection = connection
            with self._held_lock:
                self._held_all.append(connection)
        return connection

    def _release_connection(self) -> None:
        connection: Connection | None = getattr(self._held, "connection", None)
        self._held.connection = None
        if connection is not None:
            with self._held_lock:
                if connection in self._held_all:
                    self._held_all.remove(connection)
            connection.close()  # back to the pool, which resets or discards it

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
        if self._turns is not None:
            with self._turns:
                return self._claim(now)
        return self._claim(now)

    def _claim(self, now: datetime) -> queries.ClaimBatch:
        connection = self._connection()
        if connection is not None:  # Core only: no ORM session needed for the claim
            try:
                with connection.begin():
                    return queries.claim_batch(
                        connection,
                        now=now,
                        lease=self.lease,
                        limit=self.batch_size,
                        worker_id=self.worker_id,
                    )
            except Exception:
                self._release_connection()
                raise
        with transaction(self._sessions) as session:
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
        together: list[ClaimedJob] = []
        alone: list[ClaimedJob] = []
        for job in batch.jobs:
            (together if self.registry.is_batched(job.kind) else alone).append(job)
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
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "job.settled", extra=self._fields(job, outcome=str(outcome), seconds=seconds)
            )

    def _settle(self, job: ClaimedJob) -> Outcome:
        handler = self.registry.get(job.kind)
        with self._sessions() as session:
            if handler is None:
                settled = self._fail(session, job, f"no handler for kind {job.kind}")
                return self._committed(session, job, settled)
            try:
                result = handler(session, job)
                while isinstance(result, Deliver):
                    session.commit()  # e.g. a send's intent, before the provider hears of it
                    result = result.then(session, deliver(result.call))
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
        """Run batchable jobs a shared transaction at a time (:meth:`_shared_round`).

        A round takes jobs in order until :data:`MAX_SHARED_CALLS` of them asked for a
        provider call (:class:`Deliver`) and commits; those calls then run at the same
        time on the pool, what they gave is written in one more shared transaction, and
        the next round starts. Cheap jobs that never call anything all share one round.
        """
        if len(jobs) == 1:  # nothing to share: a savepoint would only cost a round trip
            self._run_job(jobs[0])
            return
        left = jobs
        while left:
            pending, left = self._first_round(left)
            running = [(*item, self._start(item[1].call)) for item in pending]
            self._deliver_rounds(
                [(job, step, at, future.result()) for job, step, at, future in running]
            )

    def _first_round(
        self, left: list[ClaimedJob]
    ) -> tuple[list[tuple[ClaimedJob, Deliver, float]], list[ClaimedJob]]:
        """Run the handlers of ``left`` until a round is full; returns the jobs waiting for
        a call (their intents committed) and the jobs not taken yet."""
        work = [(job, self._handler_work(job), time.perf_counter()) for job in left]
        try:
            first, taken = self._shared_round(work, stop_after=MAX_SHARED_CALLS)
        except Exception as exc:
            # The shared transaction failed as a whole (a deadlock, a dropped connection):
            # nothing of it committed, and the jobs are still ours under their leases, so
            # each runs again on its own rather than waiting for its lease to run out.
            logger.warning("job.batch_failed", extra={"jobs": len(left), "error": short_error(exc)})
            for job in left:
                self._run_job(job)
            return [], []
        ran, rest = left[:taken], left[taken:]
        if isinstance(first, _LeaseLost):
            # Some job's lease was lost, so the whole round was rolled back (that job's
            # work must not commit). Rare: run the others one by one, as if unbatched.
            for job in ran:
                if job.id in first.ids:
                    self._lost(job)
                else:
                    self._run_job(job)
            return [], rest
        self._observe(first.settled)
        return first.pending, rest

    def _deliver_rounds(
        self, delivered: list[tuple[ClaimedJob, Deliver, float, Delivered]]
    ) -> None:
        """Write what the calls gave (their intents were committed), in rounds, until no
        job asks for another call (a fallback to the step's next channel)."""
        while delivered:
            work = [(job, _then(step, result), at) for job, step, at, result in delivered]
            while True:
                try:
                    after, _ = self._shared_round(work)
                except Exception as exc:
                    # The calls were made; what they gave could not be written. Their
                    # messages stay as recorded before the call, and each job's next run
                    # (when its lease runs out) finds them so: never sent twice (ADR 0004).
                    for job, _, _ in work:
                        logger.error(
                            "job.settle_failed", extra=self._fields(job, error=short_error(exc))
                        )
                    return
                if not isinstance(after, _LeaseLost):
                    break
                # A late worker's outcomes must not commit: drop those jobs, write the rest.
                for job, _, _ in work:
                    if job.id in after.ids:
                        self._lost(job)
                work = [item for item in work if item[0].id not in after.ids]
            self._observe(after.settled)
            running = [(job, step, at, self._start(step.call)) for job, step, at in after.pending]
            delivered = [(job, step, at, future.result()) for job, step, at, future in running]

    def _start(self, call: Callable[[], Any]) -> Future[Delivered]:
        """Start a provider call on the pool (or run it here, with one thread)."""
        if self.threads > 1:
            return self._executor().submit(deliver, call)
        done: Future[Delivered] = Future()
        done.set_result(deliver(call))
        return done

    def _handler_work(self, job: ClaimedJob) -> _Work:
        handler = self.registry.get(job.kind)
        assert handler is not None  # only registered kinds are batchable
        return lambda session: handler(session, job)

    def _shared_round(
        self, work: list[tuple[ClaimedJob, _Work, float]], *, stop_after: int | None = None
    ) -> tuple[_Round | _LeaseLost, int]:
        """Run ``work`` in one transaction; one DELETE for the done jobs, one commit.

        First without savepoints: a SAVEPOINT and its RELEASE per job cost more than a
        cheap job itself (bench/claim.py), and handlers rarely raise. If one does,
        everything is rolled back and the round runs again with a SAVEPOINT per job,
        so that the raising job loses only its own work and is retried or failed in the
        same transaction (work may run twice: the queue's contract). If any lease was
        lost, everything is rolled back and the jobs whose lease was lost are returned.
        Also returns how many of ``work`` it took (``stop_after`` calls end a round).
        """
        try:
            return self._round(work, savepoints=False, stop_after=stop_after)
        except _HandlerRaised:
            return self._round(work, savepoints=True, stop_after=stop_after)

    def _round(
        self,
        work: list[tuple[ClaimedJob, _Work, float]],
        *,
        savepoints: bool,
        stop_after: int | None,
    ) -> tuple[_Round | _LeaseLost, int]:
        connection = self._connection()
        if connection is None:
            return self._round_in(self._sessions(), work, savepoints, stop_after)
        try:
            return self._round_in(self._sessions(bind=connection), work, savepoints, stop_after)
        except _HandlerRaised:
            raise  # rolled back already; the connection is fine
        except Exception:
            self._release_connection()
            raise

    def _round_in(
        self,
        session: Session,
        work: list[tuple[ClaimedJob, _Work, float]],
        savepoints: bool,
        stop_after: int | None,
    ) -> tuple[_Round | _LeaseLost, int]:
        out = _Round()
        done: list[tuple[ClaimedJob, float]] = []
        taken = 0
        with session:
            for job, run, started in work:
                if stop_after is not None and len(out.pending) >= stop_after:
                    break
                taken += 1
                try:
                    if savepoints:
                        with session.begin_nested():
                            result = run(session)
                    else:
                        result = run(session)
                except Exception as exc:
                    if not savepoints:
                        session.rollback()
                        raise _HandlerRaised from exc
                    one = self._after_error(session, job, exc)
                else:
                    if result is None:
                        done.append((job, started))
                        continue
                    if isinstance(result, Deliver):
                        out.pending.append((job, result, started))
                        continue
                    one = self._record(session, job, result)
                if one.outcome is _LEASE_LOST:
                    session.rollback()
                    return _LeaseLost(frozenset({job.id})), taken
                out.settled.append((job, one, time.perf_counter() - started))
            finished = queries.finish_many(
                session, [job for job, _ in done], worker_id=self.worker_id
            )
            if len(finished) != len(done):
                session.rollback()
                lost = frozenset(job.id for job, _ in done if job.id not in finished)
                return _LeaseLost(lost), taken
            session.commit()
        now = time.perf_counter()
        out.settled += [(job, _DONE, now - started) for job, started in done]
        return out, taken

    def _observe(self, settled: list[tuple[ClaimedJob, _Settled, float]]) -> None:
        debug = logger.isEnabledFor(logging.DEBUG)
        for job, one, seconds in settled:
            self._log_settled(job, one)
            self.stats.observe(kind=job.kind, outcome=one.outcome, seconds=seconds)
            if debug:
                logger.debug(
                    "job.settled",
                    extra=self._fields(job, outcome=str(one.outcome), seconds=seconds),
                )

    def _lost(self, job: ClaimedJob) -> None:
        logger.warning("job.lease_lost", extra=self._fields(job))
        self.stats.observe(kind=job.kind, outcome=Outcome.LEASE_LOST, seconds=0.0)

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
