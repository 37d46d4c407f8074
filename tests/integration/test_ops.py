"""What an operator relies on: health and readiness probes, Prometheus metrics that move
with the work, and logs that never carry a shopper's address."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.stores.models import Store
from cartback.stores.service import update_settings
from support.factories import (
    StoreKeys,
    advance,
    cart_updated,
    order_placed,
    post_events,
    run_due,
)
from support.smtp import SmtpSink

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def ingested(metrics: dict[Any, float], kind: str, result: str) -> float:
    key = ("cartback_events_ingested_total", (("result", result), ("type", kind)))
    return metrics.get(key, 0.0)


def test_healthz_answers_without_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ready_with_a_working_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_readyz_is_503_when_the_database_is_gone(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(client.app.state.services, "readers", broken)  # type: ignore[attr-defined]
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "ConnectionError"}


def test_metrics_count_ingested_events_by_type_and_result(
    client: TestClient, clock: ManualClock, store: StoreKeys
) -> None:
    before = samples(client)
    event = cart_updated(at=clock.now())
    post_events(client, store, event, order_placed(at=clock.now()))
    post_events(client, store, event)
    after = samples(client)
    assert (
        ingested(after, "cart.updated", "accepted") - ingested(before, "cart.updated", "accepted")
        == 1
    )
    assert (
        ingested(after, "cart.updated", "duplicate") - ingested(before, "cart.updated", "duplicate")
        == 1
    )
    assert (
        ingested(after, "order.placed", "accepted") - ingested(before, "order.placed", "accepted")
        == 1
    )


def test_a_refused_batch_counts_nothing(
    client: TestClient, clock: ManualClock, store: StoreKeys
) -> None:
    before = samples(client)
    bad = cart_updated(at=clock.now(), currency="usd")
    assert client.post("/v1/events", json=bad, headers=store.auth).status_code == 422
    after = samples(client)
    assert ingested(after, "cart.updated", "accepted") == ingested(
        before, "cart.updated", "accepted"
    )


def test_metrics_show_due_jobs_and_their_lag(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated(at=clock.now()))
    idle = samples(client)
    assert idle[("cartback_jobs_due", ())] == 0
    assert idle[("cartback_jobs_lag_seconds", ())] == 0

    clock.advance(31 * MINUTE)  # the abandonment check was due at 30 min
    late = samples(client)
    assert late[("cartback_jobs_due", ())] == 1
    assert late[("cartback_jobs_lag_seconds", ())] == 60.0

    run_due(runtime)
    done = samples(client)
    assert done[("cartback_jobs_due", ())] == 0
    assert done[("cartback_jobs_lag_seconds", ())] == 0


def test_metrics_count_the_last_24h_of_messages_by_channel_and_status(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(client, store, cart_updated("c1", at=clock.now(), email="a@example.com"))
    post_events(client, store, cart_updated("c2", at=clock.now(), email="b@example.com"))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 1 * HOUR)  # two first reminders, into the outbox
    now = samples(client)
    assert now[("cartback_messages_24h", (("channel", "email"), ("status", "sent")))] == 2

    clock.advance(24 * HOUR + MINUTE)  # the next reminders are due, not run: none in 24 h
    later = samples(client)
    assert ("cartback_messages_24h", (("channel", "email"), ("status", "sent"))) not in later


@pytest.fixture
def smtp_store(runtime: Runtime, store: StoreKeys, smtp_sink: SmtpSink) -> StoreKeys:
    with transaction(runtime.sessions) as session:
        found = session.get(Store, store.id)
        assert found is not None
        update_settings(session, found, {"smtp_url": smtp_sink.url})
    return store


def _texts(record: logging.LogRecord) -> list[str]:
    reserved = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}
    texts = [record.getMessage()]
    texts += [repr(v) for k, v in record.__dict__.items() if k not in reserved]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append(repr(record.exc_info[1]))
    return texts


def test_logs_of_a_whole_journey_never_hold_the_full_email_address(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="cartback")
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 1 * HOUR)
    smtp_sink.refuse("451 4.2.0 <ann@example.com> mailbox busy")  # an error that names her
    advance(runtime, clock, 23 * HOUR)
    smtp_sink.refuse(None)
    advance(runtime, clock, 2 * HOUR)
    advance(runtime, clock, 48 * HOUR)
    post_events(client, smtp_store, order_placed(at=clock.now(), email="ann@example.com"))
    advance(runtime, clock, 30 * 24 * HOUR)

    assert len(smtp_sink.received) >= 2  # the journey really ran and mailed her
    cartback_records = [r for r in caplog.records if r.name.startswith("cartback")]
    assert any(r.getMessage() == "message.sent" for r in cartback_records)
    for record in cartback_records:
        for text in _texts(record):
            assert "ann@example.com" not in text.lower(), (record.getMessage(), text)
