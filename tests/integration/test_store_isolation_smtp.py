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
