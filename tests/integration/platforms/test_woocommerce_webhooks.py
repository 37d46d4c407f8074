"""WooCommerce order webhooks end to end, on the real database and app: the samples
replayed byte for byte, the activation ping, a forgery refused with nothing stored, an
unpaid order kept as the cart until it is paid, and the versions applied newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.callback_world import problem
from support.factories import StoreKeys, advance
from support.platform_samples import (
    WOO_SECRET,
    compact,
    raw_request,
    sample_bytes,
    woo_headers,
    woo_order,
)
from support.platform_world import EMPTY, cart, contact, order, state

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REQUEST = "woocommerce_order_created_request"


def url(store: StoreKeys) -> str:
    return f"/v1/webhooks/woocommerce/{store.id}"


def post(
    client: TestClient,
    store: StoreKeys,
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = WOO_SECRET,
) -> Any:
    body = payload if isinstance(payload, bytes) else compact(payload)
    return client.post(url(store), content=body, headers=woo_headers(topic, body, secret=secret))


def answered(response: Any, status: str = "accepted", detail: str | None = None) -> None:
    assert response.status_code == 200, response.text
    expected = {"status": status} if detail is None else {"status": status, "detail": detail}
    assert response.json() == expected


def test_the_signed_sample_request_places_the_order(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    sample_request = raw_request(REQUEST)

    response = client.post(url(shop), content=sample_request.body, headers=sample_request.headers)

    answered(response)
    placed = order(runtime, shop, "727")
    assert (placed.total, placed.currency, placed.cart_id) == (2935, "USD", None)
    buyer = contact(runtime, shop, "john.doe@example.com")
    assert (buyer.first_name, buyer.country, buyer.external_id) == ("John", "US", None)
    assert state(runtime)["carts"] == []  # processing: an order, never an open cart


@pytest.mark.parametrize("flip", ["body", "signature", "secret", "missing"])
def test_a_tampered_request_is_401_and_stores_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys, flip: str
) -> None:
    sample_request = raw_request(REQUEST)
    headers, body = dict(sample_request.headers), sample_request.body
    if flip == "body":
        body = body.replace(b'"total":"29.35"', b'"total":"0.01"')
        assert body != sample_request.body
    elif flip == "signature":
        signature = headers["X-WC-Webhook-Signature"]
        headers["X-WC-Webhook-Signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    elif flip == "secret":
        headers = woo_headers("order.created", body, secret="another-secret")
    else:
        del headers["X-WC-Webhook-Signature"]

    response = client.post(url(shop), content=body, headers=headers)

    problem(response, 401, "missing_signature" if flip == "missing" else "invalid_signature")
    assert state(runtime) == EMPTY


def test_the_activation_ping_gets_200_and_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys, bare: StoreKeys
) -> None:
    ping = raw_request("woocommerce_webhook_ping_request")

    response = client.post(url(shop), content=ping.body, headers=ping.headers)
    not_connected = client.post(url(bare), content=ping.body, headers=ping.headers)

    answered(response, "ping")
    problem(not_connected, 404, "platform_not_configured")
    assert state(runtime) == EMPTY


def test_the_json_samples_replay_byte_for_byte_and_place_the_order_once(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    created, updated = (
        sample_bytes("woocommerce_order_created"),
        sample_bytes("woocommerce_order_updated"),
    )

    answered(post(client, shop, "order.created", created))
    answered(post(client, shop, "order.updated", updated))  # completed: the same order
    answered(post(client, shop, "order.updated", updated), "duplicate")

    assert state(runtime)["orders"] == [("727", None, 2935)]


def test_a_reminder_then_payment_recovers_the_unpaid_order(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    start = clock.now()
    answered(post(client, shop, "order.created", woo_order(status="pending", modified=start)))
    left = cart(runtime, shop, "728")
    assert (left.status, left.stage, left.value, left.item_count) == ("active", "checkout", 1800, 3)
    assert left.items[1]["name"] == "Ship Your Idea – Color: Black, Size: M Test"
    assert left.restore_url == "https://example.com/checkout/order-pay/728/?pay_for_order=true"
    advance(runtime, clock, 31 * MINUTE)
    advance(runtime, clock, HOUR)
    assert cart(runtime, shop, "728").reminders_sent == 1

    paid = woo_order(status="processing", modified=clock.now())
    answered(post(client, shop, "order.updated", paid))

    assert cart(runtime, shop, "728").status == "recovered"
    placed = order(runtime, shop, "728")
    assert (placed.recovered, placed.total) == (True, 2935)


@pytest.mark.parametrize("status", ["pending", "failed", "on-hold", "checkout-draft"])
def test_unpaid_statuses_are_open_carts(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, status: str
) -> None:
    answered(post(client, shop, "order.updated", woo_order(status=status, modified=clock.now())))

    assert cart(runtime, shop, "728").status == "active"
    assert state(runtime)["orders"] == []


@pytest.mark.parametrize("status", ["cancelled", "refunded", "trash"])
def test_other_statuses_change_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, status: str
) -> None:
    response = post(client, shop, "order.updated", woo_order(status=status, modified=clock.now()))

    answered(response, "ignored", f"status {status!r} is neither an open cart nor an order")
    assert state(runtime) == EMPTY


def test_an_older_version_of_the_order_is_stale(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    answered(post(client, shop, "order.updated", woo_order(status="on-hold", modified=now)))
    before = state(runtime)

    response = post(
        client, shop, "order.updated", woo_order(status="pending", modified=now - MINUTE)
    )

    answered(response, "stale", "a newer version of this cart was applied already")
    assert state(runtime) == before


def test_an_unpaid_version_arriving_after_the_paid_one_is_no_cart(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    answered(post(client, shop, "order.updated", woo_order(status="processing", modified=now)))
    before = state(runtime)

    response = post(
        client, shop, "order.created", woo_order(status="pending", modified=now - MINUTE)
    )

    answered(response, "ignored", "this checkout became an order already")
    assert state(runtime) == before


def test_a_deleted_order_clears_its_cart(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    answered(post(client, shop, "order.created", woo_order(status="pending", modified=now)))

    answered(post(client, shop, "order.deleted", b'{"id":728}'))

    assert cart(runtime, shop, "728").status == "cleared"


def test_bad_input_is_a_4xx_and_stores_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    broken = woo_order(status="pending", modified=clock.now())
    broken["line_items"][0]["subtotal"] = "six"
    no_topic = woo_headers("order.created", b'{"id":1}')
    del no_topic["X-WC-Webhook-Topic"]

    bad_amount = post(client, shop, "order.created", broken)
    not_json = post(client, shop, "order.created", b"webhook_id=12&x=1")
    missing_topic = client.post(url(shop), content=b'{"id":1}', headers=no_topic)

    assert problem(bad_amount, 422, "invalid_payload")["errors"] == [
        {"field": "line_items[0].subtotal", "message": "'six' is not an amount such as \"19.99\""}
    ]
    problem(not_json, 400, "malformed_json")
    problem(missing_topic, 400, "missing_header")
    assert state(runtime) == EMPTY
