"""M5 / M6: due-job claim + complete rate, raw SQL loop (baseline B2) vs ``cartback.queue.Worker``.

A migrated cartback database gets 200,000 due no-op jobs in its own ``jobs`` table (same
schema and partial index ``ix_jobs_due`` for both contenders), re-seeded before every run.

- raw (B2): ``UPDATE jobs SET status='running', run_at=lease, attempts=attempts+1, worker_id=..
  WHERE id IN (SELECT id .. WHERE status IN ('pending','running') AND run_at<=now ORDER BY
  run_at LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING ..`` + commit, then ONE batched
  completion ``DELETE .. WHERE id = ANY(ids)`` + commit. SQLite: ``BEGIN IMMEDIATE`` around each.
- cartback: ``Worker(batch_size=n, concurrency=C).run_once()`` in a loop with a no-op handler
  registered for the job kind as batchable (``batched=True``: the worker's own claim, then one
  transaction per batch, a SAVEPOINT per job and one guarded DELETE); ``--per-job`` registers
  it per-job instead (one transaction and commit per job).

Both run in the same number of processes with the same batch size, on the same database,
back to back. Each run stops after ``--seconds`` (default 5) or when the jobs run out, and
reports jobs claimed-and-completed per second; the 200k jobs are rarely all drained at the
default duration (the rate is what is compared; the table still holds ~200k due rows).

Targets: cartback >= 0.80x raw (M5); on PostgreSQL, 4 workers >= 0.9x of 1 worker (M6).

Run:  .venv/bin/python bench/claim.py [--no-pg] [--seconds 5] [--repeat 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

KIND = "bench.noop"
STORE = "st_bench"
LEASE = timedelta(minutes=5)


def _sqlite_ts(moment: datetime) -> str:
    # the text SQLAlchemy stores for UTCDateTime on SQLite (naive UTC, microseconds)
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(url: str, jobs: int) -> None:
    """Empty ``jobs`` and fill it with ``jobs`` due no-op jobs (due in the last hour)."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    if url.startswith("sqlite"):
        db = sqlite3.connect(url.removeprefix("sqlite:///"))
        db.execute("DELETE FROM jobs")
        step = 3600 / jobs
        created = _sqlite_ts(now)
        db.executemany(
            "INSERT INTO jobs (store_id, kind, key, payload, status, run_at, attempts,"
            " max_attempts, created_at) VALUES (?, ?, ?, '{}', 'pending', ?, 0, 10, ?)",
            (
                (STORE, KIND, f"k{i}", _sqlite_ts(start + timedelta(seconds=i * step)), created)
                for i in range(jobs)
            ),
        )
        db.commit()
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("TRUNCATE jobs")
        db.execute(
            "INSERT INTO jobs (store_id, kind, key, payload, status, run_at, attempts,"
            " max_attempts, created_at)"
            " SELECT %s, %s, 'k' || g, '{}'::jsonb, 'pending',"
            " %s + g * (interval '1 hour' / %s), 0, 10, %s"
            " FROM generate_series(1, %s) g",
            (STORE, KIND, start, jobs, now, jobs),
        )
        db.execute("VACUUM ANALYZE jobs")


# --- the raw loop (B2) ------------------------------------------------------------------

RAW_CLAIM_PG = """
UPDATE jobs SET status = 'running', run_at = %(lease)s, attempts = attempts + 1,
       worker_id = %(worker)s
WHERE id IN (SELECT id FROM jobs
             WHERE status IN ('pending', 'running') AND run_at <= %(now)s
             ORDER BY run_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)
RETURNING id, store_id, kind, key, payload, attempts, max_attempts
"""
RAW_CLAIM_SQLITE = """
UPDATE jobs SET status = 'running', run_at = :lease, attempts = attempts + 1, worker_id = :worker
WHERE id IN (SELECT id FROM jobs
             WHERE status IN ('pending', 'running') AND run_at <= :now
             ORDER BY run_at LIMIT :n)
RETURNING id, store_id, kind, key, payload, attempts, max_attempts
"""


class RawLoop:
    def __init__(self, url: str, batch: int, worker: str) -> None:
        self.url, self.batch, self.worker = url, batch, worker
        if url.startswith("sqlite"):
            self.db: Any = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None, timeout=30
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        else:
            import psycopg

            self.db = psycopg.connect(url)

    def run(self, deadline: float) -> int:
        done = 0
        db, batch, worker = self.db, self.batch, self.worker
        if self.url.startswith("sqlite"):
            while time.monotonic() < deadline:
                now = datetime.now(UTC)
                db.execute("BEGIN IMMEDIATE")
                rows = db.execute(
                    RAW_CLAIM_SQLITE,
                    {
                        "lease": _sqlite_ts(now + LEASE),
                        "worker": worker,
                        "now": _sqlite_ts(now),
                        "n": batch,
                    },
                ).fetchall()
                db.execute("COMMIT")
                if not rows:
                    break
                ids = [r[0] for r in rows]  # (the no-op "handler" runs here)
                db.execute("BEGIN IMMEDIATE")
                db.execute(f"DELETE FROM jobs WHERE id IN ({','.join('?' * len(ids))})", ids)
                db.execute("COMMIT")
                done += len(ids)
        else:
            while time.monotonic() < deadline:
                now = datetime.now(UTC)
                rows = db.execute(
                    RAW_CLAIM_PG, {"lease": now + LEASE, "worker": worker, "now": now, "n": batch}
                ).fetchall()
                db.commit()
                if not rows:
                    # other workers may hold the rest locked; stop only when nothing is due
                    left = db.execute("SELECT count(*) FROM jobs WHERE status='pending'").fetchone()
                    db.commit()
                    if left[0]:
                        continue
                    break
                ids = [r[0] for r in rows]
                db.execute("DELETE FROM jobs WHERE id = ANY(%s)", (ids,))
                db.commit()
                done += len(ids)
        self.db.close()
        return done


# --- cartback's worker --------------------------------------------------------------------


class CartbackLoop:
    def __init__(self, url: str, batch: int, concurrency: int, per_job: bool = False) -> None:
        # imports and engine set-up happen before the clock starts
        from cartback.core.clock import SystemClock
        from cartback.core.db import make_engine, make_sessionmaker
        from cartback.queue import Registry, Worker

        self.engine = make_engine(url)
        registry = Registry()
        registry.register(KIND, lambda session, job: None, batched=not per_job)
        self.worker = Worker(
            make_sessionmaker(self.engine),
            registry,
            SystemClock(),
            batch_size=batch,
            concurrency=concurrency,
        )
        with self.engine.connect():
            pass

    def run(self, deadline: float) -> int:
        with self.worker:
            while time.monotonic() < deadline:
                if self.worker.run_once() == 0:
                    break
        self.engine.dispose()
        return self.worker.stats.done


def _child(
    kind: str,
    url: str,
    batch: int,
    concurrency: int,
    go: Any,
    seconds: float,
    worker: str,
    out: Any,
    per_job: bool = False,
) -> None:
    loop = (
        RawLoop(url, batch, worker)
        if kind == "raw"
        else CartbackLoop(url, batch, concurrency, per_job)
    )
    out.put("ready")
    go.wait()
    start = time.monotonic()
    n = loop.run(start + seconds)
    out.put((n, time.monotonic() - start))


def run(
    kind: str,
    url: str,
    *,
    workers: int,
    batch: int,
    concurrency: int,
    seconds: float,
    per_job: bool = False,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_child,
            args=(kind, url, batch, concurrency, go, seconds, f"w{i}", out, per_job),
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every child has imported everything and connected
        assert out.get(timeout=120) == "ready"
    go.set()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    done = sum(n for n, _ in results)
    elapsed = max(t for _, t in results)
    return {"jobs": done, "seconds": elapsed, "rate": done / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="time limit per run")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="Worker(concurrency=...) threads per process (cartback default 4)",
    )
    parser.add_argument(
        "--per-job",
        action="store_true",
        help="register the no-op handler per-job (one transaction per job), not batched",
    )
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    pg = not args.no_pg and c.pg_available()
    info = c.machine(["postgresql"] if pg else [])
    print("# Claim benchmark (M5, M6)")
    print(
        f"Command: `{c.command_line()}`; {args.jobs:,} due no-op jobs re-seeded before every "
        f"run; each run stops after {args.seconds:g} s or when the jobs run out; "
        f"cartback Worker concurrency={args.concurrency}, "
        f"{'per-job' if args.per_job else 'batched'} no-op handler\n"
    )
    c.print_machine(info)
    if not args.no_pg and not pg:
        print(f"PostgreSQL not reachable at {c.PG_SERVER}: PG runs skipped\n")

    configs: list[tuple[str, int, int]] = []
    if not args.no_sqlite:
        configs += [("sqlite", 1, 10), ("sqlite", 1, 100)]
    if pg:
        configs += [("pg", 1, 10), ("pg", 4, 10), ("pg", 1, 100), ("pg", 4, 100)]

    from cartback.migrations import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="cartback-bench-claim-"))
    stack: list[Any] = []
    urls = {"sqlite": f"sqlite:///{workdir / 'claim.db'}"}
    rows, results = [], {"machine": info, "command": c.command_line(), "runs": []}
    try:
        if pg:
            cm = c.pg_database()
            stack.append(cm)
            urls["pg"] = cm.__enter__()
        for url in {urls[e] for e, _, _ in configs}:
            upgrade(url)
        by_config: dict[tuple[str, int, int], dict[str, float]] = {}
        for engine, workers, batch in configs:
            url = urls[engine]
            raw, mine = [], []
            for _ in range(args.repeat):
                seed(url, args.jobs)
                raw.append(
                    run(
                        "raw",
                        url,
                        workers=workers,
                        batch=batch,
                        concurrency=1,
                        seconds=args.seconds,
                    )["rate"]
                )
                seed(url, args.jobs)
                mine.append(
                    run(
                        "cartback",
                        url,
                        workers=workers,
                        batch=batch,
                        concurrency=args.concurrency,
                        seconds=args.seconds,
                        per_job=args.per_job,
                    )["rate"]
                )
            r_raw, r_mine = c.median(raw), c.median(mine)
            ratio = c.median([c.ratio(m, r) for m, r in zip(mine, raw, strict=True)])
            by_config[(engine, workers, batch)] = {"raw": r_raw, "cartback": r_mine}
            print(
                f"  {engine} {workers}x{batch}: raw {r_raw:,.0f}/s  cartback {r_mine:,.0f}/s"
                f"  ratio {ratio:.2f}"
            )
            rows.append(
                [
                    engine,
                    f"{workers} x {batch}",
                    r_raw,
                    r_mine,
                    ratio,
                    f">= 0.80: {c.verdict(ratio, 0.80)}",
                ]
            )
            results["runs"].append(
                {"engine": engine, "workers": workers, "batch": batch, "raw": raw, "cartback": mine}
            )
    finally:
        for cm in stack:
            cm.__exit__(None, None, None)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)

    print("\n## M5: claim + complete, jobs/s\n")
    print(c.table(["engine", "workers x batch", "raw SQL", "cartback", "ratio", "target"], rows))
    if pg:
        print("\n## M6: 4 worker processes vs 1 (PostgreSQL)\n")
        m6 = []
        for batch in (10, 100):
            one, four = by_config[("pg", 1, batch)], by_config[("pg", 4, batch)]
            for who in ("raw", "cartback"):
                rat = c.ratio(four[who], one[who])
                m6.append(
                    [
                        who,
                        batch,
                        one[who],
                        four[who],
                        rat,
                        f">= 0.90: {c.verdict(rat, 0.90)}" if who == "cartback" else "-",
                    ]
                )
        print(c.table(["loop", "batch", "1 worker/s", "4 workers/s", "4 / 1", "target"], m6))
    c.write_json(args.json, results)


if __name__ == "__main__":
    main()
