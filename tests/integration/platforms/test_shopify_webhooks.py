"""Shopify webhooks end to end, on the real database and app: the shared samples replayed
byte for byte; a forgery refused with nothing stored; a redelivery and a stale retry that
change nothing; an order that finds its checkout's cart and counts the recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.callback_world import problem
from support.factories import StoreKeys, advance
from support.platform_samples import (
    SHOPIFY_SECRET,
    compact,
    raw_request,
    sample,
    sample_bytes,
    shopify_checkout,
    shopify_headers,
    shopify_order,
)
from support.platform_world import EMPTY, cart, consents, contact, order, state

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
REQUEST = "shopify_checkouts_create_request"
SAMPLE_WEBHOOK_ID = "545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9"  # in the request sample


def url(store: StoreKeys) -> str:
    return f"/v1/webhooks/shopify/{store.id}"


def post(
    client: TestClient,
    store: StoreKeys,
    topic: str,
    payload: dict[str, Any] | bytes,
    *,
    webhook_id: str,
    triggered_at: datetime | None = None,
    secret: str = SHOPIFY_SECRET,
) -> Any:
    body = payload if isinstance(payload, bytes) else compact(payload)
    headers = shopify_headers(
        topic, body, webhook_id=webhook_id, triggered_at=triggered_at, secret=secret
    )
    return client.post(url(store), content=body, headers=headers)


def answered(response: Any, status: str = "accepted", detail: str | None = None) -> None:
    assert response.status_code == 200, response.text
    expected = {"status": status} if detail is None else {"status": status, "detail": detail}
    assert response.json() == expected


# --- the samples, byte for byte --------------------------------------------------------------


def test_the_signed_sample_request_becomes_a_checkout_cart(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    sample_request = raw_request(REQUEST)

    response = client.post(url(shop), content=sample_request.body, headers=sample_request.headers)

    answered(response)
    found = cart(runtime, shop, "123123123")
    assert (found.status, found.stage, found.currency, found.value, found.item_count) == (
        "active",
        "checkout",
        "USD",
        39800,
        2,
    )
    line = {
        "sku": "IPOD2008PINK",
        "name": "IPod Nano - 8GB",
        "unit_price": 19900,
        "quantity": 1,
        "url": None,
        "image_url": None,
        "variant": "Pink",
    }
    assert found.items == [line, line]
    assert found.restore_url == (
        "https://checkout.local/548380009/checkouts/123123123/recover?key=example-secret-token"
    )
    # updated_at 2021-12-31T19:00:00-05:00; the trigger time (years later in the sample)
    # refines it by just under a second
    assert found.snapshot_at == datetime(2022, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    shopper = contact(runtime, shop, "example@email.com")
    # the customer id is above 2^53: a float would have made it 603851970716743400
    assert (shopper.external_id, shopper.first_name, shopper.country) == (
        "603851970716743426",
        "John",
        "US",
    )
    assert consents(runtime) == []  # buyer_accepts_marketing false grants and withdraws nothing
    assert [(e[1], e[2]) for e in state(runtime)["events"]] == [
        ("shopify:545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9", "cart.updated"),
        ("shopify:545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9:checkout", "checkout.started"),
        ("shopify:cart_token:eeafa272cebfd4b22385bc4b645e762c", "platform.link"),
    ]


def tampered_body() -> tuple[dict[str, str], bytes]:
    sample_request = raw_request(REQUEST)
    body = sample_request.body.replace(b'"price":"199.00"', b'"price":"1.00"', 1)
    assert body != sample_request.body
    return sample_request.headers, body


def other_signature() -> tuple[dict[str, str], bytes]:
    sample_request = raw_request(REQUEST)
    signature = sample_request.headers["X-Shopify-Hmac-Sha256"]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {**sample_request.headers, "X-Shopify-Hmac-Sha256": flipped}, sample_request.body


def other_secret() -> tuple[dict[str, str], bytes]:
    sample_request = raw_request(REQUEST)
    body = sample_request.body
    return shopify_headers(
        "checkouts/create", body, webhook_id=SAMPLE_WEBHOOK_ID, secret="not-hush"
    ), body


def no_signature() -> tuple[dict[str, str], bytes]:
    sample_request = raw_request(REQUEST)
    headers = dict(sample_request.headers)
    del headers["X-Shopify-Hmac-Sha256"]
    return headers, sample_request.body


@pytest.mark.parametrize(
    ("forge", "code"),
    [
        (tampered_body, "invalid_signature"),
        (other_signature, "invalid_signature"),
        (other_secret, "invalid_signature"),
        (no_signature, "missing_signature"),
    ],
)
def test_a_tampered_request_is_401_and_stores_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys, forge: Any, code: str
) -> None:
    headers, body = forge()

    response = client.post(url(shop), content=body, headers=headers)

    body_ = problem(response, 401, code)
    assert body_["instance"] == url(shop)
    assert state(runtime) == EMPTY


def test_a_redelivery_is_a_duplicate_and_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    sample_request = raw_request(REQUEST)
    answered(client.post(url(shop), content=sample_request.body, headers=sample_request.headers))
    before = state(runtime)

    again = client.post(url(shop), content=sample_request.body, headers=sample_request.headers)

    answered(again, "duplicate")
    assert state(runtime) == before


def test_the_json_samples_replay_byte_for_byte_and_the_delete_finds_its_cart(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    update = sample_bytes("shopify_checkouts_update")
    answered(post(client, shop, "checkouts/update", update, webhook_id="w-update"))
    assert cart(runtime, shop, "123123123").status == "active"

    # the delete has no token: only the id and the cart token the update was linked by
    deleted = sample_bytes("shopify_checkouts_delete")
    answered(post(client, shop, "checkouts/delete", deleted, webhook_id="w-delete"))

    gone = cart(runtime, shop, "123123123")
    assert (gone.status, gone.value, gone.items) == ("cleared", 0, [])


def test_a_delete_naming_no_known_checkout_is_ignored(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    response = post(
        client, shop, "checkouts/delete", sample_bytes("shopify_checkouts_delete"), webhook_id="w"
    )

    answered(response, "ignored", "no cart is known by the names in this delivery")
    assert state(runtime) == EMPTY


def test_the_order_sample_is_placed_once_across_create_and_paid(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    body = sample_bytes("shopify_orders_create")

    answered(post(client, shop, "orders/create", body, webhook_id="w-create"))
    answered(post(client, shop, "orders/paid", body, webhook_id="w-paid"))

    placed = order(runtime, shop, "450789469")
    # presentment money, to minor units: "598.94" USD
    assert (placed.total, placed.currency, placed.discount_codes) == (59894, "USD", ["TENOFF"])
    assert placed.cart_id is None  # no checkout of it was seen
    assert len(state(runtime)["orders"]) == 1
    buyer = contact(runtime, shop, "bob.norman@mail.example.com")
    assert (buyer.phone, buyer.external_id) == ("+557734881234", "207119551")


def test_the_customer_sample_identifies_the_shopper_and_an_older_update_is_stale(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    answered(
        post(
            client,
            shop,
            "customers/create",
            sample_bytes("shopify_customers_create"),
            webhook_id="c1",
        )
    )
    known = contact(runtime, shop, "bob@biller.com")
    assert (known.external_id, known.first_name, known.country) == (
        "706405506930370084",
        "Bob",
        "CA",
    )
    older = {**sample("shopify_customers_create"), "updated_at": "2021-12-30T19:00:00-05:00"}
    older["first_name"] = "Robert"
    before = state(runtime)

    response = post(client, shop, "customers/update", older, webhook_id="c0")

    answered(response, "stale", "a newer version of this record was applied already")
    assert state(runtime) == before


# --- the lookups that fail, and bad input ---------------------------------------------------


def test_an_unknown_store_or_a_store_without_shopify_is_404(
    client: TestClient, runtime: Runtime, bare: StoreKeys
) -> None:
    sample_request = raw_request(REQUEST)

    unknown = client.post(
        "/v1/webhooks/shopify/no-such-store",
        content=sample_request.body,
        headers=sample_request.headers,
    )
    not_connected = client.post(
        url(bare), content=sample_request.body, headers=sample_request.headers
    )

    problem(unknown, 404, "store_not_found")
    detail = problem(not_connected, 404, "platform_not_configured")["detail"]
    assert "cartback connect shopify STORE" in detail
    assert state(runtime)["events"] == []


def _checkout(**changes: Any) -> dict[str, Any]:
    checkout = shopify_checkout(updated_at=datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    checkout.update(changes)
    return checkout


def _bad_price() -> dict[str, Any]:
    checkout = _checkout()
    checkout["line_items"][0]["price"] = "abc"
    return checkout


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b'{"token": ', 400, "malformed_json", None),
        (b"", 400, "empty_body", None),
        (b"[1, 2]", 422, "invalid_shape", None),
        (b'{"token": NaN}', 400, "malformed_json", None),
        (compact(_bad_price()), 422, "invalid_payload", "line_items[0].price"),
        (compact(_checkout(token=None)), 422, "invalid_payload", "token"),
        (compact(_checkout(email="not-an-email")), 422, "invalid_payload", "contact.email"),
        (compact(_checkout(updated_at="yesterday")), 422, "invalid_payload", "updated_at"),
        (compact(_checkout(line_items={"a": 1})), 422, "invalid_payload", "line_items"),
        (compact(_checkout(presentment_currency="dollars")), 422, "invalid_payload", None),
        (compact(_checkout(token=2**400)), 422, "invalid_payload", "token"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem_and_stores_nothing(
    client: TestClient,
    runtime: Runtime,
    shop: StoreKeys,
    body: bytes,
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = post(client, shop, "checkouts/update", body, webhook_id="w-bad")

    problem_ = problem(response, status, code)
    if field is not None:
        assert problem_["errors"][0]["field"] == field
        assert field in problem_["detail"]
    assert state(runtime) == EMPTY


@pytest.mark.parametrize(
    ("drop", "value", "status", "code"),
    [
        ("X-Shopify-Webhook-Id", None, 400, "missing_header"),
        ("X-Shopify-Topic", None, 400, "missing_header"),
        (None, "last tuesday", 422, "invalid_payload"),
        (None, "2025-07-10T16:15:47Z\x01", 422, "invalid_payload"),
    ],
)
def test_missing_or_bad_shopify_headers_are_a_4xx(
    client: TestClient,
    runtime: Runtime,
    shop: StoreKeys,
    drop: str | None,
    value: str | None,
    status: int,
    code: str,
) -> None:
    sample_request = raw_request(REQUEST)
    headers = dict(sample_request.headers)
    if drop:
        del headers[drop]
    if value:
        headers["X-Shopify-Triggered-At"] = value

    response = client.post(url(shop), content=sample_request.body, headers=headers)

    problem(response, status, code)
    assert state(runtime) == EMPTY


def test_a_topic_cartback_does_not_use_is_acknowledged_and_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    response = post(client, shop, "products/update", b'{"id": 1}', webhook_id="w-p")

    answered(response, "ignored", "topic 'products/update' is not one cartback uses")
    assert state(runtime) == EMPTY


# --- versions: the newest wins ---------------------------------------------------------------


def test_a_stale_retry_of_an_older_checkout_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    start = clock.now()
    newer = shopify_checkout(updated_at=start - MINUTE, prices=("199.00", "5.00"))
    older = shopify_checkout(updated_at=start - 3 * MINUTE, prices=("199.00",))
    answered(post(client, shop, "checkouts/update", newer, webhook_id="w-2"))
    before = state(runtime)

    # Shopify retries carry the original payload: this one was made before the one applied
    response = post(
        client, shop, "checkouts/update", older, webhook_id="w-1", triggered_at=start - 3 * MINUTE
    )

    answered(response, "stale", "a newer version of this cart was applied already")
    assert state(runtime) == before
    assert cart(runtime, shop, "tok-1").value == 20400


def test_two_changes_in_the_same_second_apply_in_trigger_order(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    second = clock.now() - MINUTE  # updated_at has whole seconds only
    first = shopify_checkout(updated_at=second, prices=("10.00",))
    then = shopify_checkout(updated_at=second, prices=("10.00", "2.50"))

    answered(
        post(
            client,
            shop,
            "checkouts/update",
            first,
            webhook_id="a",
            triggered_at=second + timedelta(milliseconds=200),
        )
    )
    answered(
        post(
            client,
            shop,
            "checkouts/update",
            then,
            webhook_id="b",
            triggered_at=second + timedelta(milliseconds=700),
        )
    )
    late = post(
        client,
        shop,
        "checkouts/update",
        first,
        webhook_id="c",
        triggered_at=second + timedelta(milliseconds=200),
    )

    answered(late, "stale", "a newer version of this cart was applied already")
    assert cart(runtime, shop, "tok-1").value == 1250


# --- consent --------------------------------------------------------------------------------


def test_ticked_boxes_at_checkout_grant_email_and_sms_consent(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    checkout = shopify_checkout(
        updated_at=clock.now() - MINUTE,
        buyer_accepts_marketing=True,
        buyer_accepts_sms_marketing=True,
        sms_marketing_phone="+14155552671",
    )

    answered(post(client, shop, "checkouts/create", checkout, webhook_id="w-1"))

    assert consents(runtime) == [
        ("email", True, "shopify checkout"),
        ("sms", True, "shopify checkout"),
    ]
    assert contact(runtime, shop, "ann@example.com").phone == "+14155552671"


def test_a_customer_who_unsubscribed_withdraws_email_consent(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    customer = sample("shopify_customers_create")
    customer["email_marketing_consent"] = {"state": "unsubscribed", "opt_in_level": None}
    customer["sms_marketing_consent"] = {"state": "not_subscribed", "opt_in_level": None}

    answered(post(client, shop, "customers/update", customer, webhook_id="w-1"))

    assert consents(runtime) == [("email", False, "shopify customer")]


# --- orders find their carts -----------------------------------------------------------------


def test_a_reminder_then_the_order_recovers_the_checkouts_cart(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    start = clock.now()
    checkout = shopify_checkout("tok-1", updated_at=start - MINUTE)
    answered(post(client, shop, "checkouts/create", checkout, webhook_id="w-1"))
    advance(runtime, clock, 31 * MINUTE)  # abandoned 30 min after the last change
    assert cart(runtime, shop, "tok-1").status == "abandoned"
    advance(runtime, clock, HOUR)  # the first reminder, 1 h after abandonment
    assert cart(runtime, shop, "tok-1").reminders_sent == 1

    # the buyer used another email: the checkout token alone finds the cart
    bought = shopify_order(at=clock.now(), checkout_token="tok-1", email="other@example.com")
    answered(post(client, shop, "orders/create", bought, webhook_id="w-2"))

    recovered = cart(runtime, shop, "tok-1")
    placed = order(runtime, shop, "820982911946154508")  # above 2^53, kept exact
    assert recovered.status == "recovered"
    assert (placed.cart_id, placed.recovered, placed.total) == (recovered.id, True, 19900)


def test_an_order_without_a_checkout_token_finds_the_cart_by_its_cart_token(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    start = clock.now()
    checkout = shopify_checkout("tok-2", cart_token="ct-2", updated_at=start - MINUTE)
    answered(post(client, shop, "checkouts/create", checkout, webhook_id="w-1"))

    bought = shopify_order(at=start, checkout_token=None, cart_token="ct-2", email=None)
    answered(post(client, shop, "orders/create", bought, webhook_id="w-2"))

    assert cart(runtime, shop, "tok-2").status == "purchased"
    assert order(runtime, shop, "820982911946154508").cart_id == cart(runtime, shop, "tok-2").id


def test_an_order_without_tokens_finds_the_buyers_cart_within_the_attribution_window(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    recent = shopify_checkout("tok-3", cart_token="ct-3", updated_at=now - 4 * 24 * HOUR)
    old = shopify_checkout(
        "tok-4", cart_token="ct-4", email="bo@example.com", updated_at=now - 6 * 24 * HOUR
    )
    answered(post(client, shop, "checkouts/create", recent, webhook_id="w-1"))
    answered(post(client, shop, "checkouts/create", old, webhook_id="w-2"))

    first = shopify_order(1, at=now, checkout_token=None, cart_token=None, email="ann@example.com")
    second = shopify_order(2, at=now, checkout_token=None, cart_token=None, email="bo@example.com")
    answered(post(client, shop, "orders/create", first, webhook_id="w-3"))
    answered(post(client, shop, "orders/create", second, webhook_id="w-4"))

    assert cart(runtime, shop, "tok-3").status == "purchased"  # 4 days: inside the 5-day window
    assert cart(runtime, shop, "tok-4").status == "active"  # 6 days: outside it
    assert order(runtime, shop, "2").cart_id is None


def test_a_checkout_arriving_after_its_order_is_no_open_cart(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    answered(post(client, shop, "orders/create", shopify_order(at=now), webhook_id="w-2"))
    before = state(runtime)

    late = shopify_checkout("tok-1", updated_at=now - 2 * MINUTE)
    response = post(client, shop, "checkouts/update", late, webhook_id="w-1")

    answered(response, "ignored", "this checkout became an order already")
    assert state(runtime) == before


def test_a_delete_that_arrives_before_the_order_still_lets_the_order_buy_the_cart(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    now = clock.now()
    checkout = shopify_checkout("tok-5", cart_token="ct-5", updated_at=now - 5 * MINUTE)
    answered(post(client, shop, "checkouts/create", checkout, webhook_id="w-1"))
    deleted = {**sample("shopify_checkouts_delete"), "cart_token": "ct-5"}
    answered(post(client, shop, "checkouts/delete", deleted, webhook_id="w-2", triggered_at=now))
    assert cart(runtime, shop, "tok-5").status == "cleared"

    bought = shopify_order(at=now - MINUTE, checkout_token="tok-5")
    answered(post(client, shop, "orders/create", bought, webhook_id="w-3"))

    assert cart(runtime, shop, "tok-5").status == "purchased"
