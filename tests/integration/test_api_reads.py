"""The read API: a store sees only its own carts and KPIs; bad queries are 4xx problems;
the OpenAPI docs describe what a developer needs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.factories import (
    StoreKeys,
    advance,
    cart_updated,
    iso,
    item,
    make_store,
    order_placed,
    post_events,
)

PROBLEM = "application/problem+json"
MINUTE = timedelta(minutes=1)


@pytest.fixture
def store_a(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return make_store(runtime, clock, name="Store A")


@pytest.fixture
def store_b(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return make_store(runtime, clock, name="Store B", currency="EUR")


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


# --- isolation ------------------------------------------------------------------------


def test_the_same_cart_id_in_two_stores_stays_two_carts(
    client: TestClient, clock: ManualClock, store_a: StoreKeys, store_b: StoreKeys
) -> None:
    post_events(
        client,
        store_a,
        cart_updated(at=clock.now(), items=[item("TEE-1", price=1999, quantity=2)]),
    )
    post_events(
        client,
        store_b,
        cart_updated(
            at=clock.now(),
            items=[item("MUG-7", price=850, quantity=5, name="Mug")],
            currency="EUR",
            email="bob@example.org",
            first_name="Bob",
        ),
    )
    a = client.get("/v1/carts/cart-1", headers=store_a.auth).json()
    b = client.get("/v1/carts/cart-1", headers=store_b.auth).json()
    assert (a["value"], a["currency"], a["item_count"]) == (3998, "USD", 2)
    assert (b["value"], b["currency"], b["item_count"]) == (4250, "EUR", 5)
    assert a["contact"]["email"] == "ann@example.com"
    assert b["contact"]["email"] == "bob@example.org"
    assert [i["sku"] for i in a["items"]] == ["TEE-1"]
    assert [i["sku"] for i in b["items"]] == ["MUG-7"]


def test_an_order_in_one_store_does_not_close_the_same_cart_id_in_another(
    client: TestClient, clock: ManualClock, store_a: StoreKeys, store_b: StoreKeys
) -> None:
    post_events(client, store_a, cart_updated(at=clock.now()))
    post_events(client, store_b, cart_updated(at=clock.now(), currency="EUR"))
    post_events(client, store_b, order_placed(at=clock.now(), currency="EUR"))
    assert client.get("/v1/carts/cart-1", headers=store_a.auth).json()["status"] == "active"
    assert client.get("/v1/carts/cart-1", headers=store_b.auth).json()["status"] == "purchased"


def test_another_stores_key_gets_404_and_no_data(
    client: TestClient, clock: ManualClock, store_a: StoreKeys, store_b: StoreKeys
) -> None:
    post_events(
        client,
        store_a,
        cart_updated("secret-cart", at=clock.now(), items=[item("GOLD-1", price=99900)]),
    )
    response = client.get("/v1/carts/secret-cart", headers=store_b.auth)
    body = problem(response, 404, "cart_not_found")
    assert body["detail"] == "This store has no cart with id 'secret-cart'"
    for leaked in ("ann@example.com", "GOLD-1", "99900", "T-shirt", store_a.id):
        assert leaked not in response.text


def test_an_unknown_cart_is_a_404_problem(client: TestClient, store_a: StoreKeys) -> None:
    response = client.get("/v1/carts/no-such-cart", headers=store_a.auth)
    body = problem(response, 404, "cart_not_found")
    assert body["instance"] == "/v1/carts/no-such-cart"
    assert body["title"] == "Not found"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer cb_sk_wrong"}, "invalid_api_key"),
    ],
)
def test_reading_a_cart_needs_a_valid_key(
    client: TestClient,
    clock: ManualClock,
    store_a: StoreKeys,
    headers: dict[str, str],
    code: str,
) -> None:
    post_events(client, store_a, cart_updated(at=clock.now()))
    response = client.get("/v1/carts/cart-1", headers=headers)
    problem(response, 401, code)
    assert "ann@example.com" not in response.text


def test_the_public_key_cannot_read_carts(
    client: TestClient, clock: ManualClock, store_a: StoreKeys
) -> None:
    post_events(client, store_a, cart_updated(at=clock.now()))
    response = client.get(
        "/v1/carts/cart-1", headers={"Authorization": f"Bearer {store_a.public_key}"}
    )
    problem(response, 401, "public_key_not_allowed")
    assert "ann@example.com" not in response.text


def test_stats_of_one_store_do_not_count_another_stores_carts(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store_a: StoreKeys,
    store_b: StoreKeys,
) -> None:
    for n in range(3):
        post_events(
            client, store_a, cart_updated(f"a-{n}", at=clock.now(), email=f"a{n}@example.com")
        )
    post_events(client, store_b, cart_updated("b-0", at=clock.now(), currency="EUR"))
    advance(runtime, clock, 90 * MINUTE)  # all abandoned, first reminders out
    post_events(client, store_a, order_placed("o-a", at=clock.now(), cart_id="a-0", total=5000))

    a = client.get("/v1/stats", headers=store_a.auth).json()
    b = client.get("/v1/stats", headers=store_b.auth).json()
    assert (a["carts_abandoned"], a["carts_recovered"], a["emails_sent"]) == (3, 1, 3)
    assert a["recovered_revenue"] == {"USD": 5000}
    assert (b["carts_abandoned"], b["carts_recovered"], b["emails_sent"]) == (1, 0, 1)
    assert b["recovered_revenue"] == {}
    assert b["recovery_rate"] == 0.0


# --- /v1/stats period -------------------------------------------------------------------


def test_stats_default_to_the_last_30_days(
    client: TestClient, clock: ManualClock, store_a: StoreKeys
) -> None:
    body = client.get("/v1/stats", headers=store_a.auth).json()
    assert body["from"] == "2025-12-06T09:00:00.000001Z"
    assert body["to"] == "2026-01-05T09:00:00.000001Z"


def test_stats_take_an_explicit_period(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store_a: StoreKeys,
) -> None:
    start = clock.now()
    post_events(client, store_a, cart_updated(at=start))
    advance(runtime, clock, 30 * MINUTE)  # abandoned at start + 30 min
    inside = {"from": iso(start), "to": iso(start + 31 * MINUTE)}
    before = {"from": iso(start - timedelta(days=1)), "to": iso(start + 29 * MINUTE)}
    assert (
        client.get("/v1/stats", params=inside, headers=store_a.auth).json()["carts_abandoned"] == 1
    )
    assert (
        client.get("/v1/stats", params=before, headers=store_a.auth).json()["carts_abandoned"] == 0
    )


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"from": "yesterday"}, "invalid_request", "query.from"),
        ({"to": "2026-13-01T00:00:00Z"}, "invalid_request", "query.to"),
        ({"from": ""}, "invalid_request", "query.from"),
        ({"from": "2026-01-05T00:00:00"}, "naive_datetime", None),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00"}, "naive_datetime", None),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "empty_period", None),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "empty_period", None),
        ({"from": "2027-01-01T00:00:00Z"}, "empty_period", None),
    ],
)
def test_a_bad_stats_period_is_422(
    client: TestClient,
    store_a: StoreKeys,
    params: dict[str, str],
    code: str,
    field: str | None,
) -> None:
    body = problem(client.get("/v1/stats", params=params, headers=store_a.auth), 422, code)
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field]
        assert body["detail"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    "params",
    [
        {"to": "0001-01-05T00:00:00Z"},  # from defaults to 30 days earlier: before year 1
        {"from": "0001-01-01T00:00:00+01:00", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00Z", "to": "9999-12-31T23:59:59-14:00"},
    ],
)
def test_stats_with_an_extreme_period_are_never_a_5xx(
    client: TestClient, store_a: StoreKeys, params: dict[str, str]
) -> None:
    response = client.get("/v1/stats", params=params, headers=store_a.auth)
    problem(response, 422, "period_out_of_range")


def test_stats_need_a_key(client: TestClient) -> None:
    problem(client.get("/v1/stats"), 401, "missing_api_key")


# --- docs -------------------------------------------------------------------------------


def test_docs_are_served_as_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "/openapi.json" in response.text
    assert "swagger-ui" in response.text


def test_openapi_lists_the_public_endpoints_and_the_event_schema(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert {"/v1/events", "/v1/carts/{cart_id}", "/v1/stats"} <= set(spec["paths"])
    assert "post" in spec["paths"]["/v1/events"]
    assert "get" in spec["paths"]["/v1/carts/{cart_id}"]
    for internal in ("/healthz", "/readyz", "/metrics", "/outbox"):
        assert internal not in spec["paths"]
    body_schema = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body_schema["properties"]["events"]["maxItems"] == 1000
    schemas = spec["components"]["schemas"]
    kinds = {
        name: schemas[name]["properties"]["type"]["const"]
        for name in ("CartUpdated", "CheckoutStarted", "ContactIdentified", "OrderPlaced")
    }
    assert kinds == {
        "CartUpdated": "cart.updated",
        "CheckoutStarted": "checkout.started",
        "ContactIdentified": "contact.identified",
        "OrderPlaced": "order.placed",
    }
    assert schemas["Item"]["properties"]["unit_price"]["minimum"] == 0
    assert set(schemas["CartSnapshot"]["required"]) == {"id", "currency", "items"}
    # every $ref the event schema uses resolves
    import json

    for ref in set(_refs(json.loads(response.text))):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
