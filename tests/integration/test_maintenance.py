"""Maintenance jobs: idle carts expire after 30 days, raw events are pruned after the
retention period; both run in bounded batches and leave everything else alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.carts import jobs as cart_jobs
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.ingest import jobs as ingest_jobs
from cartback.ingest.models import Event
from cartback.queue import Job
from support.factories import (
    StoreKeys,
    advance,
    cart_updated,
    item,
    post_events,
    run_due,
    use_flow,
)

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def cart(client: TestClient, keys: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
    response = client.get(f"/v1/carts/{cart_id}", headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kinds(body: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in body["timeline"]]


def schedule_expiry(runtime: Runtime, clock: ManualClock) -> None:
    with transaction(runtime.sessions) as session:
        cart_jobs.schedule(session, clock)


def schedule_pruning(runtime: Runtime, clock: ManualClock) -> None:
    with transaction(runtime.sessions) as session:
        ingest_jobs.schedule(session, clock)


def event_ids(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return sorted(session.execute(select(Event.event_id)).scalars())


def maintenance_job(runtime: Runtime, kind: str) -> Job:
    with runtime.sessions() as session:
        return session.execute(select(Job).where(Job.kind == kind)).scalar_one()


# --- cart expiry ------------------------------------------------------------------------


def test_a_cart_idle_for_30_days_expires_and_its_journey_ends(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    # a journey still running at day 30
    use_flow(runtime, clock, store, {"name": "Slow", "steps": [{"after": "1h"}, {"after": "40d"}]})
    post_events(client, store, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 60 * MINUTE)
    assert cart(client, store)["journeys"][0]["status"] == "active"

    clock.advance(30 * DAY)
    schedule_expiry(runtime, clock)
    run_due(runtime)

    body = cart(client, store)
    assert body["status"] == "expired"
    assert body["closed_at"] == "2026-02-04T10:30:00Z"
    assert body["journeys"][0]["status"] == "exited"
    assert body["journeys"][0]["exit_reason"] == "cart_expired"
    assert kinds(body)[-2:] == ["cart.expired", "flow.exited"]
    advance(runtime, clock, 20 * DAY)  # the 40-day step never sends
    assert [m["status"] for m in cart(client, store)["messages"]] == ["sent"]


def test_an_expired_cart_is_marked_on_its_timeline(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated(at=clock.now()))
    advance(runtime, clock, 31 * DAY)  # the whole default journey ran and completed
    schedule_expiry(runtime, clock)
    run_due(runtime)
    body = cart(client, store)
    assert body["status"] == "expired"
    assert kinds(body)[-1] == "cart.expired"
    assert body["journeys"][0]["status"] == "completed"


def test_a_cart_active_29_days_ago_does_not_expire(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated("old", at=clock.now(), email="old@example.com"))
    clock.advance(1 * DAY)
    post_events(client, store, cart_updated("recent", at=clock.now(), email="new@example.com"))
    advance(runtime, clock, 29 * DAY + MINUTE)  # old: idle 30 d + 1 min; recent: 29 d
    schedule_expiry(runtime, clock)
    run_due(runtime)
    assert cart(client, store, "old")["status"] == "expired"
    recent = cart(client, store, "recent")
    assert recent["status"] == "abandoned"
    assert "cart.expired" not in kinds(recent)


def test_expiry_runs_in_bounded_batches_until_every_idle_cart_is_expired(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cart_jobs, "BATCH", 2)
    for n in range(5):
        post_events(
            client, store, cart_updated(f"c{n}", at=clock.now(), email=None, event_id=f"e{n}")
        )
    clock.advance(31 * DAY)
    run_due(runtime)  # abandonment checks
    schedule_expiry(runtime, clock)

    with runtime.worker(concurrency=1, batch_size=1) as worker:
        assert worker.run_once() == 1
    statuses = [cart(client, store, f"c{n}")["status"] for n in range(5)]
    assert statuses.count("expired") == 2
    job = maintenance_job(runtime, cart_jobs.EXPIRE_JOB)
    assert job.run_at == clock.now()  # a full batch: runs again at once

    run_due(runtime)
    assert [cart(client, store, f"c{n}")["status"] for n in range(5)] == ["expired"] * 5
    job = maintenance_job(runtime, cart_jobs.EXPIRE_JOB)
    assert job.run_at == clock.now() + cart_jobs.EVERY  # a short batch: back in an hour


def test_expiry_leaves_bought_carts_alone(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    from support.factories import order_placed

    post_events(client, store, cart_updated(at=clock.now()), order_placed(at=clock.now()))
    clock.advance(40 * DAY)
    schedule_expiry(runtime, clock)
    run_due(runtime)
    body = cart(client, store)
    assert body["status"] == "purchased"
    assert "cart.expired" not in kinds(body)


# --- event pruning ----------------------------------------------------------------------


def test_events_older_than_the_retention_are_pruned_and_carts_stay_as_they_were(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated(at=clock.now(), event_id="old", email=None))
    clock.advance(2 * DAY)
    post_events(
        client,
        store,
        cart_updated(at=clock.now(), event_id="new", email=None, items=[item(quantity=3)]),
    )
    advance(runtime, clock, 88 * DAY + MINUTE)  # "old" received 90 d + 1 min ago, "new" 88 d
    before = cart(client, store)
    assert before["status"] == "abandoned"

    schedule_pruning(runtime, clock)
    run_due(runtime)

    assert event_ids(runtime) == ["new"]
    after = cart(client, store)
    assert after == before
    assert after["item_count"] == 3
    job = maintenance_job(runtime, ingest_jobs.PRUNE_JOB)
    assert job.run_at == clock.now() + ingest_jobs.EVERY


def test_events_within_the_retention_are_kept(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated(at=clock.now(), event_id="e1", email=None))
    clock.advance(89 * DAY)
    schedule_pruning(runtime, clock)
    run_due(runtime)
    assert event_ids(runtime) == ["e1"]


def test_pruning_runs_in_bounded_batches(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest_jobs, "BATCH", 2)
    post_events(
        client,
        store,
        *[cart_updated(f"c{n}", at=clock.now(), event_id=f"e{n}", email=None) for n in range(5)],
    )
    advance(runtime, clock, 91 * DAY)  # the abandonment checks run first
    schedule_pruning(runtime, clock)

    with runtime.worker(concurrency=1, batch_size=1) as worker:
        assert worker.run_once() == 1
    assert event_ids(runtime) == ["e2", "e3", "e4"]
    assert maintenance_job(runtime, ingest_jobs.PRUNE_JOB).run_at == clock.now()

    run_due(runtime)
    assert event_ids(runtime) == []
    job = maintenance_job(runtime, ingest_jobs.PRUNE_JOB)
    assert job.run_at == clock.now() + ingest_jobs.EVERY
    assert [cart(client, store, f"c{n}")["item_count"] for n in range(5)] == [1] * 5
