"""M11 + tick cost: does a scheduler tick, and the worker's memory, grow with stored carts?

For each size, a migrated SQLite database gets one store and N carts with one pending
``cart.abandon`` job each, bulk-inserted with SQL in one transaction (``executemany`` for
the contacts, ``INSERT ... SELECT`` over a recursive CTE for the carts and jobs). Exactly
1,000 of them are due (their cart's ``abandon_at`` passed, each with a shopper contact, so
the real abandonment handler marks it abandoned and enrolls it in the default flow); the
other N - 1,000 are due 1-30 days in the future. Then, in a FRESH subprocess on a copy of
the database:

- tick: ``Runtime.worker()`` (settings defaults, batch 50 x 4 threads) calls ``run_once``
  until nothing is due; the time until the 1,000 due jobs are done is the tick time;
- RSS: ``VmRSS`` / ``VmHWM`` from /proc/self/status after the runtime is built and after
  the tick.

Targets: tick time at 1,000,000 carts <= 1.2x the time at 10,000 carts; worker RSS at
1,000,000 carts <= 1.2x the RSS at 1,000 carts.

Run:  .venv/bin/python bench/tick.py [--big 1000000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

DUE = 1000
SECRET = "bench-secret-key-not-for-production"


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, carts: int, now: datetime) -> float:
    """A migrated database with ``carts`` carts + jobs, ``DUE`` of them due at ``now``."""
    from cartback.core.clock import ManualClock
    from cartback.core.db import make_engine, make_sessionmaker, transaction
    from cartback.migrations import upgrade
    from cartback.stores.schemas import StoreSettings
    from cartback.stores.service import create_store

    start = time.perf_counter()
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        store_id = create_store(
            session,
            name="Bench Shop",
            now=ManualClock(now).now(),
            settings=StoreSettings(sender_email="shop@example.com"),
        ).store.id
    engine.dispose()

    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # building the fixture only
    items = json.dumps(
        [
            {
                "sku": "TEE-1",
                "name": "Organic T-shirt",
                "unit_price": 1999,
                "quantity": 2,
                "url": "https://shop.example/p/tee-1",
                "image_url": "https://shop.example/i/tee-1.jpg",
            },
            {
                "sku": "CAP-7",
                "name": "Canvas cap",
                "unit_price": 1500,
                "quantity": 1,
                "url": "https://shop.example/p/cap-7",
                "image_url": None,
            },
        ]
    )
    created = ts(now - timedelta(hours=2))
    past = ts(now - timedelta(minutes=5))
    last_due = ts(now - timedelta(minutes=35))

    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO contacts (id, store_id, email, first_name, orders_count, created_at,"
        " updated_at) VALUES (?, ?, ?, 'Ann', 0, ?, ?)",
        ((f"ct{i:07d}", store_id, f"shopper{i}@example.com", created, created) for i in range(DUE)),
    )
    # The bulk of the rows: generated inside SQLite (a recursive CTE), ~5x faster than
    # executemany from Python; the due rows (i < DUE) get the past times and a contact.
    seq = (
        f"WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {carts - 1})"
    )
    fut = (
        "strftime('%Y-%m-%d %H:%M:%S', :now, '+' || (86400 + (i * 7919) % (29 * 86400))"
        " || ' seconds') || '.000000'"
    )
    params = {
        "store": store_id,
        "items": items,
        "created": created,
        "past": past,
        "last_due": last_due,
        "now": now.strftime("%Y-%m-%d %H:%M:%S"),
        "due": DUE,
    }
    db.execute(
        f"{seq} INSERT INTO carts (id, store_id, external_id, contact_id, currency, items, value,"
        " item_count, stage, status, restore_url, snapshot_at, last_activity_at, abandon_at,"
        " reminders_sent, created_at, updated_at)"
        " SELECT printf('ca%07d', i), :store, 'c' || i,"
        " CASE WHEN i < :due THEN printf('ct%07d', i) END, 'USD', :items, 5498, 3, 'cart',"
        " 'active', 'https://shop.example/cart/c' || i, :created,"
        " CASE WHEN i < :due THEN :last_due ELSE :created END,"
        f" CASE WHEN i < :due THEN :past ELSE {fut} END, 0, :created, :created FROM seq",
        params,
    )
    db.execute(
        f"{seq} INSERT INTO jobs (store_id, kind, key, payload, status, run_at, attempts,"
        " max_attempts, created_at)"
        " SELECT :store, 'cart.abandon', printf('abandon:ca%07d', i),"
        " printf('{\"cart_id\": \"ca%07d\"}', i), 'pending',"
        f" CASE WHEN i < :due THEN :past ELSE {fut} END, 0, 10, :created FROM seq",
        params,
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - start


def status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])  # kB
    return fields


def child(path: str, now_iso: str) -> None:
    """In a fresh process: build the runtime, run the tick, print JSON."""
    from cartback.app import build_runtime
    from cartback.core.clock import ManualClock
    from cartback.settings import Settings

    clock = ManualClock(datetime.fromisoformat(now_iso))
    workdir = Path(path).parent
    runtime = build_runtime(
        Settings(
            database_url=f"sqlite:///{path}",
            secret_key=SECRET,  # type: ignore[arg-type]
            outbox_dir=str(workdir / "outbox"),
        ),
        clock,
        migrate=False,
    )
    before = status()
    done = 0
    start = time.perf_counter()
    with runtime.worker() as worker:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (n := worker.run_once()) > 0:
            done += n
    seconds = time.perf_counter() - start
    after = status()
    runtime.close()
    print(
        json.dumps(
            {
                "done": done,
                "seconds": seconds,
                "rss_before_kb": before["VmRSS"],
                "rss_after_kb": after["VmRSS"],
                "hwm_kb": after["VmHWM"],
            }
        )
    )


def measure(base: Path, work: Path, now: datetime, pyspy: str | None = None) -> dict[str, Any]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(base, work)
    cmd = [sys.executable, __file__, "--child", str(work), now.isoformat()]
    if pyspy:  # the whole child (start-up included) under py-spy; collapsed stacks
        cmd = [
            pyspy,
            "record",
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--output",
            f"{work}.pyspy.txt",
            "--",
            *cmd,
        ]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no result from the child:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", type=int, default=1_000_000, help="carts in the big database")
    parser.add_argument("--small", type=int, default=10_000, help="carts for the tick baseline")
    parser.add_argument("--tiny", type=int, default=1_000, help="carts for the RSS baseline")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="build the databases here and keep them")
    parser.add_argument("--py-spy", metavar="PATH", help="profile the big tick (needs --keep)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    info = c.machine()
    print("# Tick and memory benchmark (M11)")
    print(
        f"Command: `{c.command_line()}`; {DUE:,} due abandonment jobs among {args.tiny:,} / "
        f"{args.small:,} / {args.big:,} stored carts (SQLite)\n"
    )
    c.print_machine(info)

    now = datetime.now(UTC).replace(microsecond=0)
    workdir = (
        Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cartback-bench-tick-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": info, "command": c.command_line(), "sizes": {}}
    try:
        sizes = sorted({args.tiny, args.small, args.big})
        bases = {}
        for n in sizes:
            path = workdir / f"carts-{n}.db"
            path.unlink(missing_ok=True)
            seconds = build(path, n, now)
            bases[n] = path
            print(
                f"  built {n:,} carts + jobs in {seconds:.1f}s "
                f"({path.stat().st_size / 2**20:,.0f} MiB)"
            )
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
        for rep in range(args.repeat):
            for n in sizes:
                spy = args.py_spy if n == args.big and rep == 0 else None
                r = measure(bases[n], workdir / "work.db", now, spy)
                runs[n].append(r)
                print(
                    f"  run {rep + 1}: {n:>9,} carts: {r['done']:,} jobs in "
                    f"{r['seconds'] * 1000:,.0f} ms; RSS {r['rss_after_kb'] / 1024:.1f} MiB "
                    f"(peak {r['hwm_kb'] / 1024:.1f})"
                )
        for n in sizes:
            results["sizes"][n] = runs[n]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    def med(n: int, key: str) -> float:
        return c.median([r[key] for r in runs[n]])

    t_small, t_big = med(args.small, "seconds"), med(args.big, "seconds")
    r_tiny, r_big = med(args.tiny, "hwm_kb"), med(args.big, "hwm_kb")
    tick_ratio, rss_ratio = c.ratio(t_big, t_small), c.ratio(r_big, r_tiny)
    print("\n## Tick: 1,000 due abandonment jobs\n")
    print(
        c.table(
            ["stored carts", "tick ms", "jobs/s", "ratio", "target"],
            [
                [args.small, t_small * 1000, DUE / t_small, 1.0, "(baseline)"],
                [
                    args.big,
                    t_big * 1000,
                    DUE / t_big,
                    tick_ratio,
                    f"<= 1.20: {c.verdict(tick_ratio, 1.2, higher_is_better=False)}",
                ],
            ],
        )
    )
    print("\n## M11: worker peak RSS (VmHWM) after the tick\n")
    print(
        c.table(
            ["stored carts", "peak RSS MiB", "RSS after MiB", "ratio", "target"],
            [
                [
                    args.tiny,
                    r_tiny / 1024,
                    med(args.tiny, "rss_after_kb") / 1024,
                    1.0,
                    "(baseline)",
                ],
                [
                    args.big,
                    r_big / 1024,
                    med(args.big, "rss_after_kb") / 1024,
                    rss_ratio,
                    f"<= 1.20: {c.verdict(rss_ratio, 1.2, higher_is_better=False)}",
                ],
            ],
        )
    )
    results.update(tick_ratio=tick_ratio, rss_ratio=rss_ratio)
    c.write_json(args.json, results)


if __name__ == "__main__":
    main()
