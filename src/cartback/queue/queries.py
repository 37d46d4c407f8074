"""Every statement the queue runs, by name, in one place.

procrastinate's ``queries.sql`` is the model: one named statement per step of a
job's life, so a reader (or a DBA with ``pg_stat_statements``) can match each
statement to the transition it makes (see the state diagram in ``models.py``).

The claim is the hot path (performance.md B4, M5-M7). On PostgreSQL it is one
round trip::

    WITH due AS MATERIALIZED (
        SELECT id, run_at FROM jobs
        WHERE status IN ('pending', 'running') AND run_at <= :now
        ORDER BY run_at LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    UPDATE jobs SET status = 'running', run_at = :lease_end,
                    attempts = attempts + 1, worker_id = :worker_id
    FROM due WHERE jobs.id = due.id
    RETURNING jobs.id, ..., due.run_at AS due_at

(a ``CTE MATERIALIZED`` rather than ``WHERE id IN (SELECT ...)`` so that the
locking subquery runs exactly once whatever plan the planner picks). SQLite has
one writer and the session already holds it (``BEGIN IMMEDIATE``), so there a
SELECT of the due ids followed by an UPDATE of those ids is just as safe; two
statements because SQLite's RETURNING cannot return the old ``run_at``.

A job whose attempts are used up (a worker crashed on its last attempt, so
its lease ran out) is turned to ``failed`` by the same statement instead of
being run again; those rows come back in :attr:`ClaimBatch.given_up`.

Predicates on ``status`` are written as the literal SQL of the partial index
``ix_jobs_due`` so that both planners can prove the index applies (a bound
parameter would hide the values from PostgreSQL's generic plans).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cartback.core.db import UTCDateTime, is_sqlite
from cartback.queue.handlers import ClaimedJob
from cartback.queue.models import Job, JobStatus

JOBS = cast(Table, Job.__table__)

# Same text as the partial index's WHERE (models.py), see the module docstring.
CLAIMABLE = text("jobs.status IN ('pending', 'running')")

LEASE_EXPIRED_ERROR = "lease expired on the last attempt"


@dataclass(frozen=True)
class ClaimBatch:
    """What one claim took: jobs to run, and jobs it gave up on (now failed)."""

    jobs: list[ClaimedJob]
    given_up: list[ClaimedJob]


def _when(value: datetime) -> ColumnElement[datetime]:
    # A typed literal, so SQLite gets the same naive-UTC text as the column.
    return literal(value, UTCDateTime())


def _at(name: str) -> ColumnElement[datetime]:
    # A typed bind parameter: the same naive-UTC text on SQLite as _when().
    return bindparam(name, type_=UTCDateTime())


def _due(now: datetime, kinds: Collection[str] | None) -> ColumnElement[bool]:
    condition = and_(CLAIMABLE, JOBS.c.run_at <= _when(now))
    if kinds is not None:
        condition = and_(condition, JOBS.c.kind.in_(sorted(kinds)))
    return condition


def _select_due(now: datetime, limit: int, kinds: Collection[str] | None) -> Select[Any]:
    return (
        select(JOBS.c.id, JOBS.c.run_at)
        .where(_due(now, kinds))
        .order_by(JOBS.c.run_at)
        .limit(limit)
    )


# --- the claim, built once per shape with bind parameters --------------------------
#
# The claim runs several times a second per worker: building the statement, and
# generating its cache key, on every call cost more than executing it (profile of
# bench/claim.py). A statement object built once memoizes its cache key, so each
# call only binds :now, :lease_end, :worker_id, :limit (and :ids on SQLite).


def _select_due_bound(kinds: tuple[str, ...] | None) -> Select[Any]:
    condition = and_(CLAIMABLE, JOBS.c.run_at <= _at("now"))
    if kinds is not None:
        condition = and_(condition, JOBS.c.kind.in_(kinds))
    return (
        select(JOBS.c.id, JOBS.c.run_at)
        .where(condition)
        .order_by(JOBS.c.run_at)
        .limit(bindparam("limit", type_=Integer()))
    )


def _claim_values() -> dict[str, Any]:
    exhausted = JOBS.c.attempts >= JOBS.c.max_attempts
    # SET expressions all see the row as it was before the UPDATE.
    return {
        "status": case((exhausted, JobStatus.FAILED.value), else_=JobStatus.RUNNING.value),
        "run_at": case((exhausted, _at("now")), else_=_at("lease_end")),
        "attempts": case((exhausted, JOBS.c.attempts), else_=JOBS.c.attempts + 1),
        "worker_id": case(
            (exhausted, JOBS.c.worker_id), else_=bindparam("claimer", type_=String())
        ),
        "last_error": case(
            (and_(exhausted, JOBS.c.status == JobStatus.RUNNING.value), LEASE_EXPIRED_ERROR),
            else_=JOBS.c.last_error,
        ),
    }


_RETURNED = (
    JOBS.c.id,
    JOBS.c.store_id,
    JOBS.c.kind,
    JOBS.c.key,
    # as its JSON text, parsed by orjson in _claimed (several times faster than json)
    sql_cast(JOBS.c.payload, Text()).label("payload"),
    JOBS.c.attempts,
    JOBS.c.max_attempts,
    JOBS.c.status,
)


def _claim_postgresql(kinds: tuple[str, ...] | None) -> Update:
    due = (
        _select_due_bound(kinds)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    return (
        update(JOBS)
        .where(JOBS.c.id == due.c.id)
        .values(_claim_values())
        .returning(*_RETURNED, due.c.run_at.label("due_at"))
    )


# SQLite: a list of ids travels as ONE parameter, a JSON array read by ``json_each``, so
# the statement text is the same whatever the batch size (an expanding IN list is
# re-rendered and its parameters re-processed on every call; PostgreSQL uses arrays).
def _json_each(name: str) -> Select[Any]:
    return select(literal_column("value")).select_from(
        func.json_each(bindparam(name, type_=String()))
    )


def _claim_sqlite() -> Update:
    return (
        update(JOBS)
        .where(JOBS.c.id.in_(_json_each("ids")))
        .values(_claim_values())
        .returning(*_RETURNED)
    )


_CLAIM_UPDATE_SQLITE = _claim_sqlite()
_statements: dict[tuple[str, tuple[str, ...] | None], Any] = {}
_statements_lock = threading.Lock()


def _built(kind: str, kinds: tuple[str, ...] | None) -> Any:
    """The statement ``kind`` ("pg-claim" or "sqlite-due") for ``kinds``, built once."""
    key = (kind, kinds)
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _claim_postgresql(kinds) if kind == "pg-claim" else _select_due_bound(kinds)
        with _statements_lock:
            if len(_statements) > 64:  # callers with ever-new kinds sets: stay bounded
                _statements.clear()
            _statements[key] = stmt
    return stmt


def _kinds_key(kinds: Collection[str] | None) -> tuple[str, ...] | None:
    return None if kinds is None else tuple(sorted(kinds))


def claim_statement_postgresql(
    *, now: datetime, lease_end: datetime, limit: int, worker_id: str, kinds: Collection[str] | None
) -> Update:
    """``claim`` on PostgreSQL: one statement (see the module docstring), values bound."""
    stmt: Update = _built("pg-claim", _kinds_key(kinds))
    return stmt.params(now=now, lease_end=lease_end, limit=limit, claimer=worker_id)


def claim_batch(
    session: Session | Connection,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    worker_id: str,
    kinds: Collection[str] | None = None,
) -> ClaimBatch:
    """Claim up to ``limit`` due jobs, oldest due first; their run_at becomes now + lease.

    ``session`` may be a Connection in a transaction: the worker claims without
    an ORM session, since the claim is Core only.
    """
    lease_end = now + lease
    params = {"now": now, "lease_end": lease_end, "limit": limit, "claimer": worker_id}
    if _dialect(session) == "sqlite":
        rows = _claim_sqlite_rows(session, params, _kinds_key(kinds))
    else:
        rows = _run(session, _built("pg-claim", _kinds_key(kinds)), params).all()
    rows.sort(key=_due_order)  # (id, ..., status, due_at): see _RETURNED
    jobs = [_claimed(row) for row in rows if row[7] == JobStatus.RUNNING]
    given_up = [_claimed(row) for row in rows if row[7] == JobStatus.FAILED]
    return ClaimBatch(jobs=jobs, given_up=given_up)


def _due_order(row: Any) -> tuple[datetime, int]:
    return row[8], row[0]


def claim(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    worker_id: str,
    kinds: Collection[str] | None = None,
) -> list[ClaimedJob]:
    """Like :func:`claim_batch`, returning only the jobs to run."""
    return claim_batch(
        session, now=now, lease=lease, limit=limit, worker_id=worker_id, kinds=kinds
    ).jobs


def _run(session: Session | Connection, statement: Any, params: Any) -> Any:
    """Execute one of the queue's Core statements in the caller's transaction.

    On a Session it goes straight to the session's connection, unless the session has
    unflushed ORM changes: then through ``Session.execute``, whose autoflush writes them
    first. The ORM execution path costs more than these statements themselves (a step
    runs three of them), and has nothing to add to a Core statement on a table.
    """
    if isinstance(session, Session):
        if session.new or session.dirty or session.deleted:
            return session.execute(statement, params)
        return session.connection().execute(statement, params)
    return session.execute(statement, params)


def _dialect(session: Session | Connection) -> str:
    if isinstance(session, Connection):
        return session.dialect.name
    return session.get_bind().dialect.name


def _claim_sqlite_rows(
    session: Session | Connection, params: dict[str, Any], kinds: tuple[str, ...] | None
) -> list[Any]:
    found = _run(session, _built("sqlite-due", kinds), params).all()
    if not found:
        return []
    due_at: dict[int, datetime] = dict(found)
    claimed = _run(session, _CLAIM_UPDATE_SQLITE, {**params, "ids": _json_ids(due_at)}).all()
    return [(*row, due_at[row[0]]) for row in claimed]


def _claimed(row: Any) -> ClaimedJob:
    """A ClaimedJob from a claim row: the columns of ``_RETURNED``, then due_at."""
    job_id, store_id, kind, key, payload, attempts, max_attempts, _, due_at = row
    return ClaimedJob(
        id=job_id,
        store_id=store_id,
        kind=kind,
        key=key,
        payload=(orjson.loads(payload) if payload else None) or {},
        attempts=attempts,
        max_attempts=max_attempts,
        due_at=due_at,
    )


def _json_ids(ids: Collection[int]) -> str:
    return orjson.dumps(list(ids)).decode()


# --- settling a claimed job (all guarded by the lease) ---------------------------


# The lease guard: the job is still ours only if nobody re-claimed it after our
# lease ran out (a re-claim changes worker_id or bumps attempts). The settle
# statements are built once; each call binds the job's id, attempt and worker.
_LEASED = and_(
    JOBS.c.id == bindparam("lease_job"),
    JOBS.c.status == JobStatus.RUNNING.value,
    JOBS.c.worker_id == bindparam("lease_worker"),
    JOBS.c.attempts == bindparam("lease_attempts"),
)
_FINISH = delete(JOBS).where(_LEASED)
_RESCHEDULE = (
    update(JOBS)
    .where(_LEASED)
    .values(
        status=JobStatus.PENDING.value,
        run_at=_at("new_run_at"),
        attempts=bindparam("new_attempts", type_=Integer()),
        worker_id=None,
        last_error=bindparam("new_error", type_=Text()),
    )
)
_FAIL = (
    update(JOBS)
    .where(_LEASED)
    .values(
        status=JobStatus.FAILED.value,
        run_at=_at("failed_at"),
        last_error=bindparam("new_error", type_=Text()),
    )
)


def _lease(job: ClaimedJob, worker_id: str) -> dict[str, Any]:
    return {"lease_job": job.id, "lease_worker": worker_id, "lease_attempts": job.attempts}


def finish(session: Session, job: ClaimedJob, *, worker_id: str) -> bool:
    """running -> (deleted). False if the lease was lost (nothing deleted)."""
    return _changed(_run(session, _FINISH, _lease(job, worker_id)))


def reschedule(
    session: Session,
    job: ClaimedJob,
    *,
    worker_id: str,
    run_at: datetime,
    attempts: int,
    reason: str,
) -> bool:
    """running -> pending at ``run_at`` (a deferral or a retry)."""
    params = {
        **_lease(job, worker_id),
        "new_run_at": run_at,
        "new_attempts": attempts,
        "new_error": reason,
    }
    return _changed(_run(session, _RESCHEDULE, params))


def fail(session: Session, job: ClaimedJob, *, worker_id: str, now: datetime, error: str) -> bool:
    """running -> failed. A failed job's run_at is when it failed (pruning uses it)."""
    params = {**_lease(job, worker_id), "failed_at": now, "new_error": error}
    return _changed(_run(session, _FAIL, params))


# One completion for a whole batch: the same lease guard as finish(), with each
# job's own attempt number, so a job re-claimed by anyone is left alone. The plain
# ``id IN`` is what lets SQLite look the rows up by primary key (with the row-value
# IN alone it scans the table).
_FINISH_MANY = (
    delete(JOBS)
    .where(
        JOBS.c.id.in_(_json_each("ids")),
        tuple_(JOBS.c.id, JOBS.c.attempts).in_(
            select(
                func.json_extract(literal_column("value"), "$[0]"),
                func.json_extract(literal_column("value"), "$[1]"),
            ).select_from(func.json_each(bindparam("leases", type_=String())))
        ),
        JOBS.c.status == JobStatus.RUNNING.value,
        JOBS.c.worker_id == bindparam("lease_worker"),
    )
    .returning(JOBS.c.id)
)


# PostgreSQL: the same guard with two array parameters, so the statement text is
# the same whatever the batch size (an expanded IN list of 100 jobs is a new,
# >4 KB query string each time, which psycopg re-parses instead of caching).
_IDS = bindparam("ids", type_=postgresql.ARRAY(BigInteger()))
_FINISH_MANY_PG = (
    delete(JOBS)
    .where(
        JOBS.c.id == any_(_IDS),
        tuple_(JOBS.c.id, JOBS.c.attempts).in_(
            select(
                func.unnest(_IDS),
                func.unnest(bindparam("attempts", type_=postgresql.ARRAY(Integer()))),
            )
        ),
        JOBS.c.status == JobStatus.RUNNING.value,
        JOBS.c.worker_id == bindparam("lease_worker"),
    )
    .returning(JOBS.c.id)
)


def finish_many(session: Session, jobs: Collection[ClaimedJob], *, worker_id: str) -> set[int]:
    """running -> (deleted) for every job in ``jobs`` still leased by ``worker_id``.

    Returns the ids deleted; a job missing from it lost its lease.
    """
    if not jobs:
        return set()
    ids = [job.id for job in jobs]
    if _dialect(session) == "sqlite":
        leases = orjson.dumps([(job.id, job.attempts) for job in jobs]).decode()
        params: dict[str, Any] = {
            "ids": _json_ids(ids),
            "leases": leases,
            "lease_worker": worker_id,
        }
        result = _run(session, _FINISH_MANY, params)
    else:
        attempts = [job.attempts for job in jobs]
        params = {"ids": ids, "attempts": attempts, "lease_worker": worker_id}
        result = _run(session, _FINISH_MANY_PG, params)
    return {row[0] for row in result.all()}


def _changed(result: Any) -> bool:
    return _rowcount(result) == 1


def _rowcount(result: Any) -> int:
    # session.execute() is typed as Result; DML gives a CursorResult with rowcount.
    return int(result.rowcount)


# --- what domain code calls (service.py) -------------------------------------


def _upsert_job(dialect: str, replace: bool) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = insert(JOBS)
    target = [JOBS.c.store_id, JOBS.c.key]
    if not replace:
        return stmt.on_conflict_do_nothing(index_elements=target)
    return stmt.on_conflict_do_update(
        index_elements=target,
        set_={
            "run_at": stmt.excluded.run_at,
            "payload": stmt.excluded.payload,
            "status": JobStatus.PENDING.value,
            "attempts": 0,
            "worker_id": None,
            "last_error": None,
        },
        # A running job is left alone: see service.enqueue.
        where=JOBS.c.status != JobStatus.RUNNING.value,
    )


# Built once: the values travel as parameters, so each call only binds them.
_UPSERT_JOB = {
    (dialect, replace): _upsert_job(dialect, replace)
    for dialect in ("sqlite", "postgresql")
    for replace in (False, True)
}


def insert_job(session: Session, values: dict[str, Any], *, replace: bool) -> None:
    """INSERT ... ON CONFLICT (store_id, key) DO NOTHING, or DO UPDATE unless running."""
    _run(session, _UPSERT_JOB[(_dialect(session), replace)], values)


def insert_jobs(session: Session, rows: list[dict[str, Any]], *, replace: bool) -> None:
    """:func:`insert_job` for many rows in one executemany; at most one row per key."""
    if rows:
        _run(session, _UPSERT_JOB[(_dialect(session), replace)], rows)


_DELETE_PENDING = delete(JOBS).where(
    JOBS.c.store_id == bindparam("store_id"),
    JOBS.c.key == bindparam("key"),
    JOBS.c.status == JobStatus.PENDING.value,
)


def delete_pending(session: Session, *, store_id: str, key: str) -> bool:
    return _changed(_run(session, _DELETE_PENDING, {"store_id": store_id, "key": key}))


def count_due(session: Session, *, now: datetime) -> int:
    return session.execute(select(func.count()).where(_due(now, None))).scalar_one()


def min_due(session: Session, *, now: datetime) -> datetime | None:
    stmt = select(func.min(JOBS.c.run_at)).where(_due(now, None))
    oldest: datetime | None = session.execute(stmt).scalar_one()
    return oldest


def delete_failed(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` failed jobs that failed before ``before``, oldest first.

    Not index-bounded (failed rows are outside ix_jobs_due): it reads the failed
    rows, which pruning keeps few. Bounded by ``limit`` per call.
    """
    doomed = (
        select(JOBS.c.id)
        .where(JOBS.c.status == JobStatus.FAILED.value, JOBS.c.run_at < _when(before))
        .order_by(JOBS.c.run_at)
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(JOBS).where(JOBS.c.id.in_(doomed)))
    return _rowcount(result)


def explain(session: Session, statement: str, *, now: datetime, limit: int = 50) -> list[str]:
    """The database's plan for one of the index-bounded reads, one line per row.

    ``statement`` is ``"claim"`` (the claim's due-scan), ``"due_count"`` or
    ``"oldest_due"``. Used by the tests that hold those reads to ix_jobs_due.
    """
    stmts: dict[str, Select[Any]] = {
        "claim": _select_due(now, limit, None),
        "due_count": select(func.count()).where(_due(now, None)),
        "oldest_due": select(func.min(JOBS.c.run_at)).where(_due(now, None)),
    }
    stmt = stmts[statement]
    if statement == "claim" and not is_sqlite(session):
        stmt = stmt.with_for_update(skip_locked=True)
    compiled = stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if is_sqlite(session) else "EXPLAIN "
    rows = session.execute(text(prefix + str(compiled))).all()
    return [str(row[-1]) for row in rows]
