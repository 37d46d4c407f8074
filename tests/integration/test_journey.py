"""The whole loop on a real database and a real SMTP server: event in, email out,
order stops it. The clock is moved, never waited for."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
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
    item,
    order_placed,
    post_events,
    use_flow,
)
from support.smtp import SmtpSink

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def smtp_store(runtime: Runtime, store: StoreKeys, smtp_sink: SmtpSink) -> StoreKeys:
    with transaction(runtime.sessions) as session:
        found = session.get(Store, store.id)
        assert found is not None
        update_settings(session, found, {"smtp_url": smtp_sink.url})
    return store


def cart(client: TestClient, keys: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
    response = client.get(f"/v1/carts/{cart_id}", headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kinds(body: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in body["timeline"]]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link(message: EmailMessage, path: str) -> str:
    found = re.search(rf"http://cartback\.test/{path}/[A-Za-z0-9_\-.]+", html_of(message))
    assert found, f"no /{path}/ link in the email"
    return found.group(0).removeprefix("http://cartback.test")


def test_left_cart_gets_three_timed_reminders_then_the_journey_completes(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    start = clock.now()
    post_events(
        client,
        smtp_store,
        cart_updated(
            at=start,
            items=[
                item("TEE-1", price=1999, quantity=2, name="Linen shirt"),
                item("CAP-9", price=1500, name="Wool cap"),
            ],
        ),
    )

    advance(runtime, clock, 29 * MINUTE)
    assert cart(client, smtp_store)["status"] == "active"
    advance(runtime, clock, 1 * MINUTE)
    assert cart(client, smtp_store)["status"] == "abandoned"
    assert smtp_sink.received == []

    advance(runtime, clock, 59 * MINUTE)
    assert smtp_sink.received == []
    advance(runtime, clock, 1 * MINUTE)  # 1 h after abandonment
    assert len(smtp_sink.received) == 1
    first = smtp_sink.received[0]
    assert first["To"] == "Ann <ann@example.com>"
    assert first["From"].addresses[0].addr_spec == "hello@acme.test"
    assert first.get_content_type() == "multipart/alternative"
    assert "Linen shirt" in html_of(first) and "Wool cap" in html_of(first)
    assert "$54.98" in html_of(first)  # 2 x 19.99 + 15.00
    assert "Linen shirt" in text_of(first)
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http://cartback\.test/u/[^>]+>", first["List-Unsubscribe"])
    assert link(first, "u") in text_of(first)
    assert link(first, "r") in text_of(first)
    assert "/o/" in html_of(first)

    advance(runtime, clock, 22 * HOUR)
    assert len(smtp_sink.received) == 1
    advance(runtime, clock, 1 * HOUR)  # 24 h after abandonment
    assert len(smtp_sink.received) == 2
    advance(runtime, clock, 48 * HOUR)  # 72 h
    assert len(smtp_sink.received) == 3
    advance(runtime, clock, 30 * 24 * HOUR)
    assert len(smtp_sink.received) == 3
    subjects = [m["Subject"] for m in smtp_sink.received]
    assert len(set(subjects)) == 3

    body = cart(client, smtp_store)
    assert [m["status"] for m in body["messages"]] == ["sent", "sent", "sent"]
    assert body["journeys"][0]["status"] == "completed"
    assert kinds(body)[:3] == ["event.cart.updated", "cart.abandoned", "flow.entered"]
    assert kinds(body).count("message.sent") == 3
    assert kinds(body)[-1] == "flow.completed"


def test_an_order_stops_the_journey_and_counts_as_recovered(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    start = clock.now()
    post_events(client, smtp_store, cart_updated(at=start))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 1 * HOUR)
    assert len(smtp_sink.received) == 1

    post_events(client, smtp_store, order_placed(at=clock.now(), total=1999))
    advance(runtime, clock, 100 * HOUR)

    assert len(smtp_sink.received) == 1
    body = cart(client, smtp_store)
    assert body["status"] == "recovered"
    assert body["journeys"][0]["status"] == "exited"
    assert body["journeys"][0]["exit_reason"] == "purchased"
    assert body["orders"] == [
        {
            "id": "order-1",
            "total": 1999,
            "currency": "USD",
            "recovered": True,
            "discount_codes": [],
            "placed_at": body["orders"][0]["placed_at"],
        }
    ]
    stats = client.get("/v1/stats", headers=smtp_store.auth).json()
    assert stats["carts_abandoned"] == 1
    assert stats["carts_recovered"] == 1
    assert stats["recovery_rate"] == 1.0
    assert stats["recovered_revenue"] == {"USD": 1999}
    assert stats["emails_sent"] == 1


def test_an_order_before_any_reminder_is_a_purchase_not_a_recovery(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 45 * MINUTE)  # abandoned, first email not yet due
    post_events(client, smtp_store, order_placed(at=clock.now()))
    advance(runtime, clock, 100 * HOUR)

    assert smtp_sink.received == []
    body = cart(client, smtp_store)
    assert body["status"] == "purchased"
    assert body["orders"][0]["recovered"] is False
    stats = client.get("/v1/stats", headers=smtp_store.auth).json()
    assert stats["carts_recovered"] == 0 and stats["recovered_revenue"] == {}


def test_an_order_by_the_same_contact_without_cart_id_is_matched_within_the_window(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 90 * MINUTE)
    assert len(smtp_sink.received) == 1
    post_events(
        client,
        smtp_store,
        order_placed(at=clock.now(), cart_id=None, email="ANN@example.com", total=2500),
    )
    advance(runtime, clock, 100 * HOUR)
    assert len(smtp_sink.received) == 1
    assert cart(client, smtp_store)["status"] == "recovered"


def test_activity_before_the_threshold_postpones_abandonment(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 20 * MINUTE)
    post_events(client, smtp_store, cart_updated(at=clock.now(), items=[item(quantity=3)]))
    advance(runtime, clock, 20 * MINUTE)  # 40 min after the first, 20 after the last
    assert cart(client, smtp_store)["status"] == "active"
    advance(runtime, clock, 10 * MINUTE)
    body = cart(client, smtp_store)
    assert body["status"] == "abandoned"
    assert body["item_count"] == 3


def test_a_changed_cart_ends_the_journey_and_a_later_abandonment_starts_a_new_one(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 90 * MINUTE)
    assert len(smtp_sink.received) == 1
    post_events(client, smtp_store, cart_updated(at=clock.now(), items=[item(quantity=2)]))
    body = cart(client, smtp_store)
    assert body["status"] == "active"
    assert body["journeys"][0]["exit_reason"] == "cart_changed"

    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 1 * HOUR)
    # the new journey's first step comes within 16 h of the last email: the budget skips it
    assert len(smtp_sink.received) == 1
    body = cart(client, smtp_store)
    assert [j["status"] for j in body["journeys"]] == ["exited", "active"]
    skipped = [t for t in body["timeline"] if t["kind"] == "step.skipped"]
    assert [(t["step"], t["reason"]) for t in skipped] == [(0, "frequency_cap")]
    advance(runtime, clock, 23 * HOUR)
    assert len(smtp_sink.received) == 2


def test_one_shopper_gets_one_stream_the_newer_cart_replaces_the_older(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated("phone-cart", at=clock.now()))
    advance(runtime, clock, 90 * MINUTE)
    assert len(smtp_sink.received) == 1
    post_events(
        client,
        smtp_store,
        cart_updated("laptop-cart", at=clock.now(), items=[item("BAG-2", price=8000)]),
    )
    advance(runtime, clock, 30 * MINUTE)  # the laptop cart is abandoned too
    older = cart(client, smtp_store, "phone-cart")
    assert older["journeys"][0]["status"] == "exited"
    assert older["journeys"][0]["exit_reason"] == "newer_cart"

    for _ in range(25):  # a worker running all along, through the next 100 hours
        advance(runtime, clock, 4 * HOUR)
    # 1 for the phone cart, then the laptop cart's 24 h and 72 h: its 1 h reminder came
    # within 16 h of the phone cart's and the frequency budget skipped it
    assert len(smtp_sink.received) == 3
    assert [m["status"] for m in cart(client, smtp_store, "phone-cart")["messages"]] == ["sent"]
    laptop = cart(client, smtp_store, "laptop-cart")
    assert [(m["step"], m["status"]) for m in laptop["messages"]] == [(1, "sent"), (2, "sent")]
    assert "/i/bag-2.jpg" in html_of(smtp_sink.received[2])  # the last reminder shows items


def test_an_older_snapshot_never_overwrites_a_newer_one(
    client: TestClient,
    clock: ManualClock,
    smtp_store: StoreKeys,
) -> None:
    newer = cart_updated(at=clock.now(), items=[item(quantity=5)])
    older = cart_updated(at=clock.now() - 10 * MINUTE, items=[item(quantity=1)])
    post_events(client, smtp_store, newer)
    post_events(client, smtp_store, older)
    body = cart(client, smtp_store)
    assert body["item_count"] == 5
    assert [e.get("change") for e in body["timeline"]] == ["created", "stale"]


def test_the_same_event_id_is_applied_once(
    client: TestClient,
    clock: ManualClock,
    smtp_store: StoreKeys,
) -> None:
    event = cart_updated(at=clock.now(), event_id="evt-same")
    first = post_events(client, smtp_store, event)
    second = post_events(client, smtp_store, event)
    assert first["accepted"] == 1 and second == {
        "accepted": 0,
        "duplicates": 1,
        "results": [{"id": "evt-same", "status": "duplicate"}],
    }
    assert kinds(cart(client, smtp_store)) == ["event.cart.updated"]


def test_entry_filters_keep_small_carts_out(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    use_flow(
        runtime,
        clock,
        smtp_store,
        {
            "name": "Big carts",
            "entry": {"min_value": 5000},
            "steps": [{"after": "90s", "template": "reminder"}],
        },
    )
    post_events(
        client,
        smtp_store,
        cart_updated("small", at=clock.now(), items=[item(price=1000)], email="small@example.com"),
    )
    post_events(
        client,
        smtp_store,
        cart_updated("big", at=clock.now(), items=[item(price=9000)], email="big@example.com"),
    )
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 2 * MINUTE)
    assert [m["To"] for m in smtp_sink.received] == ["Ann <big@example.com>"]
    small = cart(client, smtp_store, "small")
    assert small["timeline"][-1]["kind"] == "flow.not_entered"
    assert small["timeline"][-1]["reason"] == "below_min_value"


def test_restore_link_counts_the_click_and_redirects_with_utm(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 90 * MINUTE)
    restore = link(smtp_sink.received[0], "r")

    response = client.get(restore, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://acme.test/cart/cart-1?utm_source=cartback&utm_medium=email"
        "&utm_campaign=cart_recovery_step_1"
    )
    tampered = restore[:-2] + ("AA" if not restore.endswith("AA") else "BB")
    assert client.get(tampered, follow_redirects=False).status_code == 404
    body = cart(client, smtp_store)
    assert body["messages"][0]["status"] == "clicked"
    assert kinds(body).count("message.clicked") == 1
    pixel = link(smtp_sink.received[0], "o")
    assert client.get(pixel).headers["content-type"] == "image/gif"
    stats = client.get("/v1/stats", headers=smtp_store.auth).json()
    assert (stats["emails_opened"], stats["emails_clicked"]) == (1, 1)


@pytest.mark.parametrize(
    "sample",
    [
        "rfc8058_one_click_unsubscribe_post.txt",
        "rfc8058_one_click_unsubscribe_post_multipart.txt",
    ],
)
def test_one_click_unsubscribe_stops_every_reminder(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
    sample: str,
    samples_dir: Any,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 90 * MINUTE)
    path = link(smtp_sink.received[0], "u")

    page = client.get(path)  # a link scanner's GET must not unsubscribe
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert cart(client, smtp_store)["journeys"][0]["status"] == "active"

    raw = (samples_dir / sample).read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    content_type = next(
        line.split(b": ", 1)[1]
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-type")
    )
    response = client.post(
        path, content=body, headers={"Content-Type": content_type.decode()}, follow_redirects=False
    )
    assert response.status_code == 200

    advance(runtime, clock, 100 * HOUR)
    assert len(smtp_sink.received) == 1
    body_json = cart(client, smtp_store)
    assert body_json["journeys"][0]["exit_reason"] == "unsubscribed"
    assert client.get("/v1/stats", headers=smtp_store.auth).json()["unsubscribes"] == 1
    # a later cart of the same shopper never enters a journey
    post_events(client, smtp_store, cart_updated("cart-2", at=clock.now()))
    advance(runtime, clock, 100 * HOUR)
    assert len(smtp_sink.received) == 1
    assert cart(client, smtp_store, "cart-2")["timeline"][-1]["reason"] == "unsubscribed"


def test_a_temporary_smtp_failure_is_retried_and_a_permanent_one_fails_the_message(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    smtp_sink.refuse("451 4.3.0 Try again later")
    advance(runtime, clock, 1 * HOUR)
    body = cart(client, smtp_store)
    assert body["messages"][0]["status"] == "queued"
    assert "451" in body["messages"][0]["error_code"]

    smtp_sink.refuse(None)
    advance(runtime, clock, 2 * HOUR)  # past the backoff and the breaker's cool-down
    assert len(smtp_sink.received) == 1
    assert cart(client, smtp_store)["messages"][0]["status"] == "sent"

    smtp_sink.refuse("550 5.1.1 No such user here")
    advance(runtime, clock, 23 * HOUR)
    body = cart(client, smtp_store)
    assert body["messages"][1]["status"] == "failed"
    assert "No such user" in body["messages"][1]["error_reason"]
    assert body["journeys"][0]["status"] == "active"  # the journey goes on to step 3
    smtp_sink.refuse(None)
    advance(runtime, clock, 48 * HOUR)
    assert len(smtp_sink.received) == 2


def test_a_message_left_sending_by_a_crash_becomes_unknown_and_is_never_resent(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    from sqlalchemy import select

    from cartback.flows.models import Enrollment
    from cartback.messages.models import Message

    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    # What a worker killed after recording intent leaves behind: the step's message in
    # 'sending' (committed) while its job is still there to be picked up again.
    with transaction(runtime.sessions) as session:
        enrollment = session.execute(select(Enrollment)).scalar_one()
        session.add(
            Message(
                id="m-crashed",
                store_id=enrollment.store_id,
                enrollment_id=enrollment.id,
                step_index=0,
                cart_id=enrollment.cart_id,
                contact_id=enrollment.contact_id,
                channel="email",
                template="reminder",
                to_address="ann@example.com",
                status="sending",
                attempts=1,
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )

    advance(runtime, clock, 1 * HOUR)

    assert smtp_sink.received == []
    body = cart(client, smtp_store)
    assert body["messages"][0]["status"] == "unknown"
    assert "message.unknown" in kinds(body)
    assert body["journeys"][0]["next_step"] == 1  # the journey goes on with step 2
    assert client.get("/v1/stats", headers=smtp_store.auth).json()["emails_unknown"] == 1
    advance(runtime, clock, 23 * HOUR)
    assert len(smtp_sink.received) == 1
    assert [m["status"] for m in cart(client, smtp_store)["messages"]] == ["unknown", "sent"]


def test_a_cart_abandoned_anonymously_enters_the_journey_once_the_shopper_is_known(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    from support.factories import iso

    post_events(client, smtp_store, cart_updated(at=clock.now(), email=None))
    advance(runtime, clock, 30 * MINUTE)
    body = cart(client, smtp_store)
    assert body["status"] == "abandoned"
    assert body["timeline"][-1]["reason"] == "no_reachable_contact"

    post_events(
        client,
        smtp_store,
        {
            "id": "evt-who",
            "type": "contact.identified",
            "occurred_at": iso(clock.now()),
            "contact": {"email": "late@example.com", "first_name": "Lee"},
            "cart": {"id": "cart-1"},
        },
    )
    advance(runtime, clock, 1 * HOUR)
    assert [m["To"] for m in smtp_sink.received] == ["Lee <late@example.com>"]


def test_a_shopper_who_comes_back_changes_the_cart_and_buys_counts_as_recovered(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    post_events(client, smtp_store, cart_updated(at=clock.now(), items=[item(price=4000)]))
    advance(runtime, clock, 90 * MINUTE)
    assert client.get(link(smtp_sink.received[0], "r"), follow_redirects=False).status_code == 302
    # back on the store: one more item in the cart, then the order
    post_events(
        client, smtp_store, cart_updated(at=clock.now(), items=[item(price=4000), item("CAP-9")])
    )
    post_events(client, smtp_store, order_placed(at=clock.now(), total=5999))

    body = cart(client, smtp_store)
    assert body["status"] == "recovered"
    assert body["journeys"][0]["exit_reason"] == "cart_changed"
    stats = client.get("/v1/stats", headers=smtp_store.auth).json()
    assert (stats["carts_abandoned"], stats["carts_recovered"]) == (1, 1)
    assert stats["recovery_rate"] == 1.0
    assert stats["recovered_revenue"] == {"USD": 5999}


def test_a_template_that_cannot_render_fails_its_message_and_the_journey_goes_on(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    smtp_store: StoreKeys,
    smtp_sink: SmtpSink,
) -> None:
    use_flow(
        runtime,
        clock,
        smtp_store,
        {
            "steps": [
                {"after": "1h", "template": "no_such_template"},
                {"after": "2h", "template": "reminder"},
            ]
        },
    )
    post_events(client, smtp_store, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 1 * HOUR)
    body = cart(client, smtp_store)
    assert body["messages"][0]["status"] == "failed"
    assert body["messages"][0]["error_code"] == "render_failed"
    assert "no_such_template" in body["messages"][0]["error_reason"]
    assert smtp_sink.received == []
    advance(runtime, clock, 1 * HOUR)
    assert len(smtp_sink.received) == 1
    assert [m["status"] for m in cart(client, smtp_store)["messages"]] == ["failed", "sent"]
