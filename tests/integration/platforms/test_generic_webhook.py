"""The generic webhook end to end, with exactly the README's worked example (settings and
payloads read from the README itself): a cart, a reminder, the order that recovers it; the
signature forms; a forgery refused with nothing stored; redeliveries and unmapped events."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.callback_world import problem
from support.factories import StoreKeys, advance, make_store
from support.platform_samples import compact
from support.platform_world import (
    EMPTY,
    cart,
    consents,
    contact,
    generic_settings,
    order,
    readme_platforms,
    state,
)

MINUTE = timedelta(minutes=1)
SECRET = generic_settings()["secret"]


def url(store: StoreKeys) -> str:
    return f"/v1/webhooks/generic/{store.id}"


def hex_hmac(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(client: TestClient, store: StoreKeys, payload: dict[str, Any], **headers: str) -> Any:
    body = compact(payload)
    sent = {"Content-Type": "application/json", "X-Shop-Signature": hex_hmac(body), **headers}
    return client.post(url(store), content=body, headers=sent)


def answered(response: Any, status: str = "accepted", detail: str | None = None) -> None:
    assert response.status_code == 200, response.text
    expected = {"status": status} if detail is None else {"status": status, "detail": detail}
    assert response.json() == expected


def readme_payloads() -> tuple[dict[str, Any], dict[str, Any]]:
    _, [saved, paid] = readme_platforms()
    return saved, paid


def with_generic(runtime: Runtime, clock: ManualClock, **changes: Any) -> StoreKeys:
    return make_store(
        runtime, clock, name="Custom Shop", platforms={"generic": {**generic_settings(), **changes}}
    )


def test_the_readme_example_cart_then_reminder_then_order_is_a_recovery(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    saved, paid = readme_payloads()  # sent at 09:00Z, the test clock's start, and 11:42Z

    answered(post(client, shop, saved))

    left = cart(runtime, shop, "4411")
    assert (left.currency, left.value, left.restore_url) == (
        "EUR",
        3998,
        "https://shop.example/cart/recover/4411",
    )
    assert left.items == [
        {
            "sku": "TEE-1",
            "name": "Linen shirt",
            "unit_price": 1999,
            "quantity": 2,
            "url": None,
            "image_url": None,
            "variant": None,
        }
    ]
    assert contact(runtime, shop, "ann@example.com").first_name == "Ann"
    assert consents(runtime) == [("email", True, "webhook")]
    advance(runtime, clock, 31 * MINUTE)
    advance(runtime, clock, 71 * MINUTE)  # 11:42: a reminder went out at 10:30
    assert cart(runtime, shop, "4411").reminders_sent == 1

    answered(post(client, shop, paid))

    assert cart(runtime, shop, "4411").status == "recovered"
    placed = order(runtime, shop, "9001")
    assert (placed.total, placed.currency, placed.discount_codes, placed.recovered) == (
        3998,
        "EUR",
        ["WELCOME10"],
        True,
    )


def test_a_redelivery_is_a_duplicate_and_an_unmapped_event_is_ignored(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    saved, _ = readme_payloads()
    answered(post(client, shop, saved))
    before = state(runtime)

    again = post(client, shop, saved)
    unmapped = post(client, shop, {"id": "d-9", "event": "wishlist.saved"})

    answered(again, "duplicate")
    answered(unmapped, "ignored", "$.event is 'wishlist.saved', which 'kinds' does not name")
    assert state(runtime) == before


def test_the_cleared_and_contact_kinds(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    saved, _ = readme_payloads()
    answered(post(client, shop, saved))

    answered(post(client, shop, {"id": "d-2", "event": "cart.deleted", "cart": {"id": 4411}}))
    answered(
        post(
            client,
            shop,
            {
                "id": "d-3",
                "event": "customer.saved",
                "customer": {"email": "bo@example.com", "firstname": "Bo", "newsletter": "no"},
            },
        )
    )

    assert cart(runtime, shop, "4411").status == "cleared"
    assert contact(runtime, shop, "bo@example.com").first_name == "Bo"
    assert ("email", False, "webhook") in consents(runtime)


@pytest.mark.parametrize(
    ("changes", "headers"),
    [
        ({"signature_encoding": "base64"}, "base64"),
        ({}, "prefixed"),
        ({"auth": "bearer"}, "bearer"),
    ],
)
def test_each_way_of_proving_a_request_is_accepted(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    changes: dict[str, Any],
    headers: str,
) -> None:
    store = with_generic(runtime, clock, **changes)
    saved, _ = readme_payloads()
    body = compact(saved)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    proof = {
        "base64": {"X-Shop-Signature": base64.b64encode(digest).decode()},
        "prefixed": {"X-Shop-Signature": f"sha256={digest.hex().upper()}"},
        "bearer": {"Authorization": f"Bearer {SECRET}"},
    }[headers]

    response = client.post(url(store), content=body, headers=proof)

    answered(response)
    assert cart(runtime, store, "4411").value == 3998


@pytest.mark.parametrize(
    ("changes", "headers", "code"),
    [
        ({}, {"X-Shop-Signature": hex_hmac(b"another body")}, "invalid_signature"),
        ({}, {"X-Shop-Signature": hex_hmac(b"", "another-secret-1234")}, "invalid_signature"),
        ({}, {}, "missing_signature"),
        ({"auth": "bearer"}, {"Authorization": "Bearer not-the-secret"}, "invalid_signature"),
        ({"auth": "bearer"}, {"Authorization": f"Basic {SECRET}"}, "invalid_signature"),
        ({"auth": "bearer"}, {}, "missing_signature"),
    ],
)
def test_a_request_that_does_not_prove_itself_is_401_and_stores_nothing(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    changes: dict[str, Any],
    headers: dict[str, str],
    code: str,
) -> None:
    store = with_generic(runtime, clock, **changes)
    saved, _ = readme_payloads()
    before = state(runtime)

    response = client.post(url(store), content=compact(saved), headers=headers)

    problem(response, 401, code)
    assert state(runtime) == before


def test_a_missing_or_malformed_field_is_a_422_naming_its_path(
    client: TestClient, runtime: Runtime, shop: StoreKeys, bare: StoreKeys
) -> None:
    saved, _ = readme_payloads()
    no_id = {**saved, "cart": {**saved["cart"], "id": None}}
    bad_price = {
        **saved,
        "cart": {**saved["cart"], "lines": [{**saved["cart"]["lines"][0], "price": "a lot"}]},
    }

    missing = post(client, shop, no_id)
    malformed = post(client, shop, bad_price)
    not_connected = post(client, bare, saved)

    assert problem(missing, 422, "invalid_payload")["detail"] == "$.cart.id: missing"
    assert problem(malformed, 422, "invalid_payload")["errors"] == [
        {
            "field": "$.cart.lines[0].price",
            "message": "'a lot' is not an amount such as \"19.99\"",
        }
    ]
    problem(not_connected, 404, "platform_not_configured")
    assert state(runtime) == EMPTY
