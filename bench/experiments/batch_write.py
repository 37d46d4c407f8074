"""Experiment (not a metric): what a set-based group write of cart.updated events costs.

On a migrated SQLite database (cartback's real schema, indexes and pragmas), each group of
``--group`` events is written the way a batched ingest path could write it: one
transaction with

1. ``INSERT INTO events ... ON CONFLICT DO NOTHING RETURNING event_id`` (dedup),
2. ``INSERT INTO contacts ... ON CONFLICT (store_id, email) DO UPDATE ... RETURNING id``,
3. one ``SELECT`` of the group's existing carts (status, snapshot_at) to decide per cart,
4. ``executemany`` upserts of carts, of their ``cart.abandon`` jobs, and timeline inserts,

with the stdlib driver. It prints microseconds per event and the implied events/s of one
writer thread. Compare with the ORM path (``apply_event``), which ``--orm`` times on the
same data. Both write the same rows.

    .venv/bin/python bench/experiments/batch_write.py [--events 5000] [--group 64] [--orm]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


EVENT = (
    '{"id":"evt-%d","type":"cart.updated","occurred_at":"%s","cart":{"id":"c-%d",'
    '"currency":"USD","restore_url":"https://shop.example/cart/%d","items":[{"sku":"TEE-1",'
    '"name":"Organic T-shirt","unit_price":1999,"quantity":2,"url":"https://shop.example/p/'
    'tee-1"},{"sku":"CAP-7","name":"Cap","unit_price":1500,"quantity":1}]},"contact":'
    '{"email":"s%d@example.com","first_name":"Ann"}}'
)


def event(i: int, at: str) -> bytes:
    return (EVENT % (i, at, i, i, i)).encode()


def batched(db: sqlite3.Connection, store: str, bodies: list[bytes], now: datetime) -> None:
    from cartback.ingest.schemas import batch_adapter

    n_ts = ts(now)
    abandon = ts(now + timedelta(minutes=30))
    events = batch_adapter.validate_python([orjson.loads(b) for b in bodies])
    db.execute("BEGIN IMMEDIATE")
    fresh = {
        row[0]
        for row in db.execute(
            "INSERT INTO events (store_id, event_id, type, occurred_at, received_at, payload)"
            " VALUES "
            + ",".join(["(?,?,?,?,?,?)"] * len(events))
            + " ON CONFLICT DO NOTHING RETURNING event_id",
            [
                v
                for e, b in zip(events, bodies, strict=True)
                for v in (store, e.id, e.type, ts(e.occurred_at), n_ts, b.decode())
            ],
        )
    }
    events = [e for e in events if e.id in fresh]
    contacts = {
        email: cid
        for cid, email in db.execute(
            "INSERT INTO contacts (id, store_id, email, first_name, orders_count, created_at,"
            " updated_at) VALUES "
            + ",".join(["(?,?,?,?,0,?,?)"] * len(events))
            + " ON CONFLICT (store_id, email) DO UPDATE SET updated_at = excluded.updated_at"
            " RETURNING id, email",
            [
                v
                for e in events
                for v in (
                    uuid.uuid4().hex,
                    store,
                    e.contact.email,
                    e.contact.first_name,
                    n_ts,
                    n_ts,
                )
            ],
        )
    }
    ext = [e.cart.id for e in events]
    existing = {
        row[0]: row
        for row in db.execute(
            "SELECT external_id, id, status, snapshot_at FROM carts WHERE store_id = ? AND"
            f" external_id IN ({','.join('?' * len(ext))})",
            [store, *ext],
        )
    }
    carts, jobs, notes = [], [], []
    for e in events:
        row = existing.get(e.cart.id)
        cart_id = row[1] if row else uuid.uuid4().hex
        items = [i.model_dump(mode="json") for i in e.cart.items]
        value = sum(i["unit_price"] * i["quantity"] for i in items)
        count = sum(i["quantity"] for i in items)
        occurred = ts(e.occurred_at)
        carts.append(
            (
                cart_id,
                store,
                e.cart.id,
                contacts[e.contact.email],
                e.cart.currency,
                json.dumps(items),
                value,
                count,
                e.cart.restore_url,
                occurred,
                occurred,
                abandon,
                n_ts,
                n_ts,
            )
        )
        jobs.append((store, f"abandon:{cart_id}", json.dumps({"cart_id": cart_id}), abandon, n_ts))
        notes.append(
            (
                store,
                cart_id,
                n_ts,
                f"event.{e.type}",
                json.dumps({"event_id": e.id, "change": "created", "items": count, "value": value}),
            )
        )
    db.executemany(
        "INSERT INTO carts (id, store_id, external_id, contact_id, currency, items, value,"
        " item_count, stage, status, restore_url, snapshot_at, last_activity_at, abandon_at,"
        " reminders_sent, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,'cart','active',?,?,?,?,0,?,?)"
        " ON CONFLICT (store_id, external_id) DO UPDATE SET items = excluded.items,"
        " value = excluded.value, item_count = excluded.item_count,"
        " snapshot_at = excluded.snapshot_at, last_activity_at = excluded.last_activity_at,"
        " abandon_at = excluded.abandon_at, updated_at = excluded.updated_at"
        " WHERE carts.snapshot_at IS NULL OR excluded.snapshot_at > carts.snapshot_at",
        carts,
    )
    db.executemany(
        "INSERT INTO jobs (store_id, kind, key, payload, status, run_at, attempts, max_attempts,"
        " created_at) VALUES (?, 'cart.abandon', ?, ?, 'pending', ?, 0, 10, ?)"
        " ON CONFLICT (store_id, key) DO UPDATE SET run_at = excluded.run_at,"
        " status = 'pending', attempts = 0 WHERE jobs.status != 'running'",
        jobs,
    )
    db.executemany(
        "INSERT INTO timeline (store_id, cart_id, at, kind, data) VALUES (?,?,?,?,?)", notes
    )
    db.execute("COMMIT")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--group", type=int, default=64)
    p.add_argument("--orm", action="store_true", help="also time the current ORM path")
    args = p.parse_args()

    from cartback.core.db import make_engine, make_sessionmaker, transaction
    from cartback.ingest.api import _ingest, parse_events
    from cartback.migrations import upgrade
    from cartback.stores.schemas import StoreSettings
    from cartback.stores.service import create_store, store_settings

    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp / 'b.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    now = datetime.now(UTC)
    with transaction(sessions) as s:
        made = create_store(s, name="B", now=now, settings=StoreSettings())
        store, settings = made.store.id, store_settings(made.store)
    at = (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    db = sqlite3.connect(tmp / "b.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        db.execute(f"PRAGMA {pragma}")
    bodies = [event(i, at) for i in range(args.events)]
    start = time.perf_counter()
    for g in range(0, len(bodies), args.group):
        batched(db, store, bodies[g : g + args.group], now)
    per = (time.perf_counter() - start) / len(bodies)
    print(
        f"set-based group write: {per * 1e6:,.0f} us/event -> {1 / per:,.0f} events/s "
        f"per writer thread (group {args.group}, incl. pydantic validation)"
    )

    if args.orm:
        bodies = [event(i, at) for i in range(args.events, args.events + min(args.events, 2000))]
        start = time.perf_counter()
        for g in range(0, len(bodies), args.group):
            with transaction(sessions) as s:
                for b in bodies[g : g + args.group]:
                    with s.begin_nested():
                        _ingest(s, store, settings, parse_events(b), now)
        per = (time.perf_counter() - start) / len(bodies)
        print(
            f"current ORM path (apply_event, savepoint per request): {per * 1e6:,.0f} us/event"
            f" -> {1 / per:,.0f} events/s per writer thread"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
