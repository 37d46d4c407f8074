"""One store's broken mail server never holds up another store's reminders."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.stores.models import Store
from cartback.stores.service import update_settings
from support.factories import advance, cart_updated, make_store, post_events
from support.smtp import SmtpSink, free_port


def test_a_store_whose_smtp_server_is_down_does_not_delay_another_store(
    client: TestClient, runtime: Runtime, clock: ManualClock, smtp_sink: SmtpSink
) -> None:
    broken = make_store(runtime, clock, name="Broken Shop")
    healthy = make_store(runtime, clock, name="Healthy Shop")
    dead_port = free_port()  # nothing listens here: connections are refused
    with transaction(runtime.sessions) as session:
        for keys, url in ((broken, f"smtp://127.0.0.1:{dead_port}"), (healthy, smtp_sink.url)):
            found = session.get(Store, keys.id)
            assert found is not None
            update_settings(session, found, {"smtp_url": url})
    for n in range(3):
        post_events(
            client, broken, cart_updated(f"b-{n}", at=clock.now(), email=f"b{n}@example.com")
        )
    post_events(client, healthy, cart_updated("h-1", at=clock.now(), email="h@example.com"))

    advance(runtime, clock, timedelta(minutes=30))
    advance(runtime, clock, timedelta(hours=1))

    assert [m["To"] for m in smtp_sink.received] == ["Ann <h@example.com>"]
    for n in range(3):
        body = client.get(f"/v1/carts/b-{n}", headers=broken.auth).json()
        message = body["messages"][0]
        assert message["status"] == "queued"  # will be retried, not lost
        assert message["error_code"] in ("smtp.connect", "circuit.open")
    statuses = client.get("/v1/carts/h-1", headers=healthy.auth).json()["messages"]
    assert [m["status"] for m in statuses] == ["sent"]


def test_a_store_whose_smtp_server_hangs_does_not_hold_up_another_store(
    client: TestClient, runtime: Runtime, clock: ManualClock, smtp_sink: SmtpSink
) -> None:
    import threading
    import time

    slow_sink = SmtpSink()
    slow_sink.start()
    released = slow_sink.hang()
    try:
        slow = make_store(runtime, clock, name="Slow Shop")
        healthy = make_store(runtime, clock, name="Healthy Shop")
        with transaction(runtime.sessions) as session:
            for keys, url in ((slow, slow_sink.url), (healthy, smtp_sink.url)):
                found = session.get(Store, keys.id)
                assert found is not None
                update_settings(session, found, {"smtp_url": url})
        post_events(client, slow, cart_updated("s-1", at=clock.now(), email="s@example.com"))
        post_events(client, healthy, cart_updated("h-1", at=clock.now(), email="h@example.com"))
        advance(runtime, clock, timedelta(minutes=30))  # both abandoned; steps due at 1 h
        clock.advance(timedelta(hours=1))

        with runtime.worker(concurrency=4, batch_size=10) as worker:
            runner = threading.Thread(target=worker.run_once)
            runner.start()
            # waiting on the worker's own progress, not on a schedule
            deadline = time.monotonic() + 20
            while not smtp_sink.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [m["To"] for m in smtp_sink.received] == ["Ann <h@example.com>"]
            assert runner.is_alive()  # the slow store's send is still waiting on its server
            released.set()
            runner.join(20)
        assert [m["To"] for m in slow_sink.received] == ["Ann <s@example.com>"]
    finally:
        released.set()
        slow_sink.stop()
