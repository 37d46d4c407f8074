"""The edge of /v1/collect: the public key and nothing else, the store's origins, the
caps, the rate limits; nothing written when a request is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.ingest.models import Event
from support.factories import START, StoreKeys, make_store, post_events
from support.factories import cart_updated as server_cart_updated
from support.snippet import ORIGIN, Browser, carts_of, line, problem


def events_stored(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(Event)).scalar_one())


# --- CORS -------------------------------------------------------------------------------------


def test_an_allowed_origin_is_echoed_and_the_answer_is_204_with_no_body(
    browser: Browser, runtime: Runtime
) -> None:
    response = browser.post(browser.cart())

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in response.headers["vary"]
    assert [c.external_id for c in carts_of(runtime, browser.store)] != []


def test_another_origin_is_refused_with_403_and_no_cors_headers_and_nothing_stored(
    new_browser: Callable[..., Browser], runtime: Runtime
) -> None:
    evil = new_browser(origin="https://evil.test")

    response = evil.post(evil.cart())

    problem(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers
    assert carts_of(runtime, evil.store) == []
    assert events_stored(runtime) == 0


def test_a_request_without_origin_is_taken_without_cors_headers(
    new_browser: Callable[..., Browser], runtime: Runtime
) -> None:
    server_side = new_browser(origin=None)

    response = server_side.post(server_side.cart())

    assert response.status_code == 204
    assert "access-control-allow-origin" not in response.headers
    assert len(carts_of(runtime, server_side.store)) == 1


def test_a_store_without_origins_allows_the_origin_of_its_url(
    runtime: Runtime, clock: ManualClock, new_browser: Callable[..., Browser]
) -> None:
    plain = make_store(runtime, clock, name="Plain", url="https://plain.test/shop")
    ok = new_browser(store=plain, origin="https://plain.test")
    other = new_browser(store=plain, origin=ORIGIN)

    assert ok.post(ok.cart()).status_code == 204
    problem(other.post(other.cart()), 403, "origin_not_allowed")


def test_preflight_with_the_stores_key_is_answered_for_its_origins_only(
    client: TestClient, shop: StoreKeys
) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    allowed = client.options(
        f"/v1/collect?key={shop.public_key}", headers={"Origin": ORIGIN, **asked}
    )
    refused = client.options(
        f"/v1/collect?key={shop.public_key}", headers={"Origin": "https://evil.test", **asked}
    )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "Content-Type"
    problem(refused, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in refused.headers


def test_preflight_without_a_key_is_answered_for_any_stores_origin(
    client: TestClient, shop: StoreKeys
) -> None:
    allowed = client.options(
        "/v1/collect", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    refused = client.options(
        "/v1/collect",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    problem(refused, 403, "origin_not_allowed")


# --- the config -------------------------------------------------------------------------------


def test_config_is_what_the_snippet_needs_cacheable_for_five_minutes(
    runtime: Runtime, clock: ManualClock, client: TestClient
) -> None:
    store = make_store(
        runtime,
        clock,
        name="Configured",
        locale="en",
        snippet={
            "origins": [ORIGIN],
            "consent_mode": "eu",
            "capture": {
                "email": ["#email", 'input[name="email"]'],
                "phone": ["#phone"],
                "consent_checkbox": "#agree",
                "consent_text": "Yes, email me my cart.",
            },
            "prompts": {
                "exit_intent": {"offer": "send_cart", "delay_seconds": 10},
                "timed": {"enabled": False, "offer": "price_watch", "delay_seconds": 45},
            },
            "texts": {"coupon_title": "Get 10% off"},
            "price_watch_days": 7,
        },
    )

    response = client.get(f"/v1/collect/config?key={store.public_key}", headers={"Origin": ORIGIN})

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    body = response.json()
    assert body["consent_mode"] == "eu"
    assert body["locale"] == "en"
    assert body["capture"] == {
        "email": ["#email", 'input[name="email"]'],
        "phone": ["#phone"],
        "consent_checkbox": "#agree",
        "consent_text": "Yes, email me my cart.",
    }
    assert body["prompts"] == {
        "exit_intent": {"enabled": True, "offer": "send_cart", "delay_seconds": 10},
        "timed": {"enabled": False, "offer": "price_watch", "delay_seconds": 45},
    }
    assert body["texts"]["coupon_title"] == "Get 10% off"
    assert body["texts"]["consent"] == "Yes, email me my cart."
    assert "7 days" in body["texts"]["price_watch_body"]
    assert "origins" not in json.dumps(body)  # only what the snippet needs


def test_config_of_an_unconfigured_store_has_defaults_and_no_prompts(
    client: TestClient, shop: StoreKeys
) -> None:
    body = client.get(f"/v1/collect/config?key={shop.public_key}").json()

    assert body["consent_mode"] == "default"
    assert body["prompts"] == {"exit_intent": None, "timed": None}
    assert body["capture"]["email"] == ['input[type="email"]']


def test_config_for_another_origin_is_refused(client: TestClient, shop: StoreKeys) -> None:
    response = client.get(
        f"/v1/collect/config?key={shop.public_key}", headers={"Origin": "https://evil.test"}
    )

    problem(response, 403, "origin_not_allowed")


# --- keys -------------------------------------------------------------------------------------


def test_the_secret_key_is_refused_on_collect_and_nothing_is_stored(
    browser: Browser, runtime: Runtime
) -> None:
    response = browser.post(browser.cart(), key=browser.store.api_key)

    problem(response, 401, "secret_key_not_allowed")
    assert carts_of(runtime, browser.store) == []
    assert events_stored(runtime) == 0


def test_the_secret_key_is_refused_on_config(client: TestClient, shop: StoreKeys) -> None:
    response = client.get(f"/v1/collect/config?key={shop.api_key}")

    problem(response, 401, "secret_key_not_allowed")


def test_the_public_key_is_refused_on_the_server_api(client: TestClient, shop: StoreKeys) -> None:
    response = client.post(
        "/v1/events",
        json=server_cart_updated(at=START),
        headers={"Authorization": f"Bearer {shop.public_key}"},
    )

    problem(response, 401, "public_key_not_allowed")


def test_a_missing_or_unknown_key_is_401(browser: Browser) -> None:
    problem(browser.post(browser.cart(), key=""), 401, "missing_public_key")
    problem(browser.post(browser.cart(), key="cb_pk_nope"), 401, "invalid_public_key")
    problem(browser.post(browser.cart(), key="anything"), 401, "invalid_public_key")


def test_another_stores_public_key_writes_only_that_stores_carts(
    runtime: Runtime,
    clock: ManualClock,
    client: TestClient,
    shop: StoreKeys,
    new_browser: Callable[..., Browser],
) -> None:
    post_events(client, shop, server_cart_updated("cart-1", at=clock.now()))
    other = make_store(runtime, clock, name="Other", snippet={"origins": ["https://other.test"]})
    intruder = new_browser(store=other, origin="https://other.test")

    intruder.ok(intruder.cart([line("HACK-1", price=1)], cart_id="cart-1"))

    ours = {c.external_id: c for c in carts_of(runtime, shop)}
    theirs = {c.external_id: c for c in carts_of(runtime, other)}
    assert [i["sku"] for i in ours["cart-1"].items] == ["TEE-1"]
    assert [i["sku"] for i in theirs["cart-1"].items] == ["HACK-1"]


def test_a_visitor_cannot_write_another_visitors_cart(
    runtime: Runtime, new_browser: Callable[..., Browser]
) -> None:
    ann, eve = new_browser(), new_browser()
    ann.ok(ann.cart([line("TEE-1")], cart_id="c-ann"))

    eve.ok(eve.cart([line("HACK-1", price=1)], cart_id="c-ann"))

    [cart] = carts_of(runtime, ann.store)
    assert [i["sku"] for i in cart.items] == ["TEE-1"]


# --- caps -------------------------------------------------------------------------------------


def test_a_body_over_16_kib_is_413_and_nothing_is_stored(
    browser: Browser, runtime: Runtime
) -> None:
    big = [line(f"SKU-{i}") for i in range(100)]
    raw = json.dumps(
        {
            "key": browser.store.public_key,
            "visitor": browser.visitor,
            "events": [browser.cart(big)],
            "padding": "x" * 16_384,
        }
    ).encode()

    problem(browser.send(raw), 413, "body_too_large")
    assert carts_of(runtime, browser.store) == []


def test_more_than_20_events_is_422_and_nothing_is_stored(
    browser: Browser, runtime: Runtime
) -> None:
    events = [browser.event("product.viewed", product=_product()) for _ in range(21)]

    body = problem(browser.post(*events), 422, "too_many_events")

    assert body["errors"] == [{"field": "events", "message": "at most 20 events"}]
    assert events_stored(runtime) == 0


def test_twenty_events_are_taken(browser: Browser, runtime: Runtime) -> None:
    browser.ok(*[browser.event("product.viewed", product=_product()) for _ in range(20)])

    assert events_stored(runtime) == 20


def test_bad_fields_are_named(browser: Browser) -> None:
    bad = browser.cart([{**line(), "unit_price": -5}])

    body = problem(browser.post(bad), 422, "invalid_event")

    assert body["errors"][0]["field"] == "events[0].cart.items[0].unit_price"


def test_unknown_event_type_malformed_json_and_other_media_types(browser: Browser) -> None:
    body = problem(browser.post(browser.event("cart.exploded")), 422, "invalid_event")
    assert body["errors"][0]["field"] == "events[0].type"
    problem(browser.send(b"{not json"), 400, "malformed_json")
    problem(browser.send(b"[]"), 422, "invalid_shape")
    problem(browser.send(b"{}", content_type="application/xml"), 415, "unsupported_media_type")


def test_application_json_is_taken_too(browser: Browser, runtime: Runtime) -> None:
    raw = json.dumps(
        {"key": browser.store.public_key, "visitor": browser.visitor, "events": [browser.cart()]}
    ).encode()

    assert browser.send(raw, content_type="application/json").status_code == 204
    assert len(carts_of(runtime, browser.store)) == 1


# --- rate limits ------------------------------------------------------------------------------


def test_over_60_requests_a_minute_from_one_ip_is_429_with_retry_after(
    browser: Browser, clock: ManualClock
) -> None:
    for _ in range(60):
        assert browser.post(browser.event("product.viewed", product=_product())).status_code == 204

    refused = browser.post(browser.event("product.viewed", product=_product()))

    problem(refused, 429, "rate_limited_ip")
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    clock.advance(timedelta(seconds=1))
    assert browser.post(browser.event("product.viewed", product=_product())).status_code == 204


def test_the_store_limit_counts_every_ip(
    runtime: Runtime, clock: ManualClock, new_browser: Callable[..., Browser]
) -> None:
    small = make_store(
        runtime,
        clock,
        name="Small",
        snippet={"origins": [ORIGIN], "rate_per_store": 3, "rate_per_ip": 100},
    )
    browser = new_browser(store=small)
    for _ in range(3):
        browser.ok(browser.event("product.viewed", product=_product()))

    refused = browser.post(browser.event("product.viewed", product=_product()))

    problem(refused, 429, "rate_limited_store")
    assert refused.headers["retry-after"] == "20"


def _product() -> dict[str, object]:
    return {"sku": "TEE-1", "name": "Linen shirt", "price": 1999, "currency": "USD"}


def test_openapi_documents_collect_beside_the_server_events(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    content = spec["paths"]["/v1/collect"]["post"]["requestBody"]["content"]
    assert set(content) == {"text/plain", "application/json"}
    assert content["text/plain"]["schema"]["properties"]["events"]["maxItems"] == 20
    assert "at" in schemas["SnippetCartUpdated"]["properties"]
    assert "occurred_at" in schemas["CartUpdated"]["properties"]  # /v1/events' own, intact
    assert "get" in spec["paths"]["/v1/collect/config"]
