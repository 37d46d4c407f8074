"""No body, however odd, gets a 5xx from /v1/collect: every refusal is a 4xx problem, and
whatever is taken is answered 204 with nothing in it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.factories import StoreKeys, make_store
from support.snippet import CHROME, ORIGIN, PROBLEM

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TYPES = [
    "product.viewed", "cart.updated", "checkout.started", "contact.captured", "prompt.shown",
    "prompt.dismissed", "prompt.submitted", "order.placed",
]  # fmt: skip
KEYS = [
    "id", "type", "at", "cart", "items", "sku", "name", "unit_price", "quantity", "currency",
    "product", "price", "email", "phone", "consent", "sms", "consent_text", "source", "prompt",
    "offer", "restore_url", "url", "image_url", "variant",
]  # fmt: skip
VALUES = [
    "2026-01-05T09:00:00Z", "2026-01-05T09:00:00", "9999-12-31T23:59:59-14:00",
    "1970-01-01T00:00:00+14:00", "USD", "usd", "ann@example.com", "ann@mailinator.com",
    "a@b", "+14155552671", "+1 (415) 555-2671", "12", "exit_intent", "timed", "send_cart",
    "price_watch", "coupon", "field", "prompt", "https://acme.test/p/1", "javascript:alert(1)",
    "\u0000", "\ud800", "x" * 300, *TYPES,
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)
event_ids = st.uuids().map(str) | st.text(max_size=70)
events = st.fixed_dictionaries(
    {"id": event_ids, "type": st.sampled_from(TYPES), "at": st.sampled_from(VALUES[:4])},
    optional={k: json_values for k in KEYS[3:]},
)
# Events that are nearly right, so that the examples reach the write and not only the
# validation: each field is a plausible value or, now and then, anything at all.
moment = st.datetimes(
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001  (hypothesis wants naive bounds)
    max_value=datetime(9000, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC) | st.sampled_from([timezone(timedelta(hours=h)) for h in (-12, 5, 14)]),
).map(lambda d: d.isoformat())
money = st.integers(min_value=0, max_value=10**12) | json_values
sku = st.sampled_from(["A", "B", "TEE-1"]) | st.text(min_size=1, max_size=5)
cart_ids = st.none() | st.sampled_from(["c-1", "c-2", "v:x"])
item = st.fixed_dictionaries(
    {"sku": sku, "name": st.sampled_from(["Tee", "Cap"]), "unit_price": money,
     "quantity": st.integers(min_value=1, max_value=5) | json_values},
)  # fmt: skip
address = st.fixed_dictionaries(
    {},
    optional={
        "email": st.sampled_from(["ann@example.com", "bob@mailinator.com", "Ann@Example.COM"]),
        "phone": st.sampled_from(["+14155552671", "8 701 234 5678", "+1 (415) 555-0000"]),
        "consent": st.fixed_dictionaries(
            {}, optional={"email": st.booleans(), "sms": st.booleans()}
        ),
        "consent_text": st.text(max_size=20),
    },
)
offers = st.sampled_from(["send_cart", "price_watch", "coupon"])
prompts = st.sampled_from(["exit_intent", "timed"])
near_events = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("product.viewed"),
         "product": st.fixed_dictionaries({"sku": sku, "name": st.just("Tee"), "price": money,
                                           "currency": st.sampled_from(["USD", "EUR"])})},
    ),
    st.fixed_dictionaries(
        {"type": st.just("cart.updated"),
         "cart": st.fixed_dictionaries(
             {"currency": st.sampled_from(["USD", "EUR"]), "items": st.lists(item, max_size=3)},
             optional={"id": cart_ids})},
    ),
    st.fixed_dictionaries(
        {"type": st.just("checkout.started"),
         "cart": st.fixed_dictionaries({}, optional={"id": cart_ids})},
    ),
    st.tuples(address, st.sampled_from(["field", "prompt"])).map(
        lambda a: {"type": "contact.captured", **a[0], "source": a[1]}
    ),
    st.tuples(prompts, offers).map(
        lambda p: {"type": "prompt.shown", "prompt": p[0], "offer": p[1]}
    ),
    st.tuples(address, prompts, offers).map(
        lambda a: {"type": "prompt.submitted", **a[0], "prompt": a[1], "offer": a[2]}
    ),
).flatmap(
    lambda event: st.tuples(st.uuids().map(str), moment).map(
        lambda extra: {"id": extra[0], "at": extra[1], **event}
    )
)  # fmt: skip


@pytest.fixture
def roomy(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    """No rate limit gets in the way of the examples."""
    return make_store(
        runtime,
        clock,
        snippet={"origins": [ORIGIN], "rate_per_ip": 100_000, "rate_per_store": 1_000_000},
    )


def _post(client: TestClient, raw: bytes, content_type: str = "text/plain") -> Any:
    return client.post(
        "/v1/collect",
        content=raw,
        headers={"Content-Type": content_type, "Origin": ORIGIN, "User-Agent": CHROME},
    )


def _answered(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 204:
        assert response.content == b""
    else:
        assert response.headers["content-type"] == PROBLEM


@FUZZ
@given(
    visitor=st.uuids().map(str) | st.text(max_size=40),
    body_events=st.lists(events, max_size=6) | json_values,
    webdriver=json_values,
)
def test_random_events_never_get_a_5xx(
    client: TestClient, roomy: StoreKeys, visitor: str, body_events: Any, webdriver: Any
) -> None:
    body = {"key": roomy.public_key, "visitor": visitor, "events": body_events}
    if webdriver is not None:
        body["webdriver"] = webdriver

    _answered(_post(client, json.dumps(body).encode()))


@FUZZ
@given(
    visitor=st.sampled_from([str(uuid.uuid4()) for _ in range(3)]),
    body_events=st.lists(near_events, min_size=1, max_size=8),
    user_agent=st.sampled_from([CHROME, "Googlebot/2.1", "", "HeadlessChrome/120"]),
)
def test_nearly_right_events_never_get_a_5xx(
    client: TestClient, roomy: StoreKeys, visitor: str, body_events: Any, user_agent: str
) -> None:
    body = {"key": roomy.public_key, "visitor": visitor, "events": body_events}

    response = client.post(
        "/v1/collect",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "text/plain", "Origin": ORIGIN, "User-Agent": user_agent},
    )

    _answered(response)


@FUZZ
@given(body=json_values, raw=st.binary(max_size=200))
def test_random_bodies_never_get_a_5xx(
    client: TestClient, roomy: StoreKeys, body: Any, raw: bytes
) -> None:
    if isinstance(body, dict):
        body.setdefault("key", roomy.public_key)
    _answered(_post(client, json.dumps(body).encode(), "application/json"))
    _answered(_post(client, raw))


def test_a_valid_body_of_every_type_is_taken(client: TestClient, roomy: StoreKeys) -> None:
    cart = {
        "id": "c-1",
        "currency": "USD",
        "items": [{"sku": "A", "name": "A", "unit_price": 100, "quantity": 1}],
    }
    product = {"sku": "A", "name": "A", "price": 100, "currency": "USD"}
    base = {"at": "2026-01-05T09:00:00Z"}
    all_types = [
        {"type": "product.viewed", "product": product},
        {"type": "cart.updated", "cart": cart},
        {"type": "checkout.started", "cart": {"id": "c-1"}},
        {"type": "contact.captured", "email": "ann@example.com", "source": "field"},
        {"type": "prompt.shown", "prompt": "timed", "offer": "send_cart"},
        {"type": "prompt.dismissed", "prompt": "timed", "offer": "send_cart"},
        {
            "type": "prompt.submitted",
            "prompt": "exit_intent",
            "offer": "price_watch",
            "email": "ann@example.com",
            "consent": {"email": True},
        },
    ]
    body = {
        "key": roomy.public_key,
        "visitor": str(uuid.uuid4()),
        "events": [{"id": str(uuid.uuid4()), **base, **event} for event in all_types],
    }

    response = _post(client, json.dumps(body).encode())

    assert response.status_code == 204, response.text
