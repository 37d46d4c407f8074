"""POST /v1/events at its edges: every bad input is a 4xx problem+json that names the
problem and stores nothing; the good shapes are accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.carts.models import Cart
from cartback.core.clock import ManualClock
from cartback.ingest.models import Event
from support.factories import StoreKeys, cart_updated, item, order_placed, post_events

PROBLEM = "application/problem+json"


def stored(runtime: Runtime) -> tuple[int, int]:
    """(events rows, carts rows) across every store."""
    with runtime.sessions() as session:
        events = session.execute(select(func.count()).select_from(Event)).scalar_one()
        carts = session.execute(select(func.count()).select_from(Cart)).scalar_one()
    return events, carts


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://cartback.dev/problems/{code}"
    assert body["instance"] == "/v1/events"
    return body


def post_raw(client: TestClient, keys: StoreKeys, content: bytes | Iterator[bytes]) -> Any:
    return client.post(
        "/v1/events",
        content=content,
        headers={**keys.auth, "Content-Type": "application/json"},
    )


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


# --- bodies that are not events at all ---------------------------------------------------


def test_malformed_json_is_400_and_stores_nothing(
    client: TestClient, runtime: Runtime, store: StoreKeys
) -> None:
    body = problem(post_raw(client, store, b'{"id": "e1", "type": '), 400, "malformed_json")
    assert body["detail"].startswith("The body is not valid JSON: ")
    assert stored(runtime) == (0, 0)


@pytest.mark.parametrize("content", [b"", b"   \n"])
def test_an_empty_body_is_400(
    client: TestClient, runtime: Runtime, store: StoreKeys, content: bytes
) -> None:
    body = problem(post_raw(client, store, content), 400, "empty_body")
    assert body["detail"] == "The body is empty; send one event or a batch as JSON"
    assert stored(runtime) == (0, 0)


@pytest.mark.parametrize("content", [b'"cart.updated"', b"42", b"null", b"true"])
def test_a_json_scalar_instead_of_an_object_is_422_invalid_shape(
    client: TestClient, runtime: Runtime, store: StoreKeys, content: bytes
) -> None:
    body = problem(post_raw(client, store, content), 422, "invalid_shape")
    assert body["detail"] == 'Send an event object, a JSON array of events, or {"events": [...]}'
    assert stored(runtime) == (0, 0)


@pytest.mark.parametrize("content", [b"[]", b'{"events": []}'])
def test_an_empty_batch_is_422(
    client: TestClient, runtime: Runtime, store: StoreKeys, content: bytes
) -> None:
    body = problem(post_raw(client, store, content), 422, "invalid_event")
    assert (
        body["errors"][0]["message"] == "List should have at least 1 item after validation, not 0"
    )
    assert stored(runtime) == (0, 0)


# --- one wrong field -----------------------------------------------------------------------


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``event`` with the dotted ``path`` set to ``value`` (or removed for ...)."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(event))
    *parents, last = path.split(".")
    target: Any = copy
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        (
            "cart.items.0.unit_price",
            "12.50",
            "cart.items[0].unit_price",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "cart.items.0.unit_price",
            12.5,
            "cart.items[0].unit_price",
            "Input should be a valid integer, got a number with a fractional part",
        ),
        (
            "cart.items.0.unit_price",
            -1,
            "cart.items[0].unit_price",
            "Input should be greater than or equal to 0",
        ),
        (
            "cart.items.0.quantity",
            0,
            "cart.items[0].quantity",
            "Input should be greater than or equal to 1",
        ),
        (
            "occurred_at",
            "2026-01-05T09:00:00",
            "occurred_at",
            "Input should have timezone info",
        ),
        ("occurred_at", "yesterday", "occurred_at", None),
        ("cart.currency", "usd", "cart.currency", "String should match pattern '^[A-Z]{3}$'"),
        ("cart.currency", "EURO", "cart.currency", "String should match pattern '^[A-Z]{3}$'"),
        ("contact.email", "ann-at-example.com", "contact.email", None),
        ("cart.restore_url", "javascript:alert(1)", "cart.restore_url", None),
        ("cart.surprise", 1, "cart.surprise", "Extra inputs are not permitted"),
        ("id", "", "id", "String should have at least 1 character"),
        ("id", ..., "id", "Field required"),
        ("occurred_at", ..., "occurred_at", "Field required"),
        ("cart", ..., "cart", "Field required"),
        ("cart.id", ..., "cart.id", "Field required"),
        ("cart.currency", ..., "cart.currency", "Field required"),
        ("cart.items.0.sku", ..., "cart.items[0].sku", "Field required"),
        ("cart.items.0.unit_price", ..., "cart.items[0].unit_price", "Field required"),
    ],
)
def test_a_wrong_or_missing_field_is_422_naming_the_field(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    path: str,
    value: Any,
    field: str,
    message: str | None,
) -> None:
    event = _with(cart_updated(at=clock.now()), path, value)
    response = client.post("/v1/events", json=event, headers=store.auth)
    body = problem(response, 422, "invalid_event")
    assert fields(body) == [field]
    if message is not None:
        assert body["errors"][0]["message"] == message
    assert (
        body["detail"]
        == f"1 problem(s) in the events, first: {field}: " + (body["errors"][0]["message"])
    )
    assert stored(runtime) == (0, 0)


@pytest.mark.parametrize("kind", ["cart.exploded", None, 7])
def test_an_unknown_or_missing_event_type_names_the_type_field(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys, kind: Any
) -> None:
    event = _with(cart_updated(at=clock.now()), "type", ... if kind is None else kind)
    body = problem(client.post("/v1/events", json=event, headers=store.auth), 422, "invalid_event")
    assert fields(body) == ["type"]
    assert body["errors"][0]["message"] == (
        "unknown or missing event type; expected one of: cart.updated, checkout.started, "
        "contact.identified, order.placed, cart.cleared, order.fulfilled, message.sent_external"
    )
    assert stored(runtime) == (0, 0)


def test_one_bad_event_in_a_batch_rejects_the_whole_batch_and_names_its_index(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    events = [cart_updated(f"cart-{n}", at=clock.now()) for n in range(5)]
    events[2] = _with(events[2], "cart.items.0.quantity", 0)
    response = client.post("/v1/events", json=events, headers=store.auth)
    body = problem(response, 422, "invalid_event")
    assert fields(body) == ["[2].cart.items[0].quantity"]
    assert stored(runtime) == (0, 0)

    wrapped = client.post("/v1/events", json={"events": events}, headers=store.auth)
    assert fields(problem(wrapped, 422, "invalid_event")) == ["[2].cart.items[0].quantity"]
    assert stored(runtime) == (0, 0)


def test_every_bad_field_of_a_batch_is_listed(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    events = [
        _with(cart_updated("a", at=clock.now()), "cart.currency", "usd"),
        cart_updated("b", at=clock.now()),
        _with(cart_updated("c", at=clock.now()), "type", "cart.exploded"),
    ]
    body = problem(client.post("/v1/events", json=events, headers=store.auth), 422, "invalid_event")
    assert fields(body) == ["[0].cart.currency", "[2].type"]
    assert stored(runtime) == (0, 0)


# --- size limits -------------------------------------------------------------------------


def test_a_batch_of_1001_events_is_422_and_1000_is_accepted(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    events = [
        cart_updated(f"cart-{n}", at=clock.now(), email=None, event_id=f"e-{n}")
        for n in range(1001)
    ]
    body = problem(
        client.post("/v1/events", json=events, headers=store.auth), 422, "batch_too_large"
    )
    assert body["detail"] == "A batch holds at most 1000 events; this one has 1001"
    assert stored(runtime) == (0, 0)

    result = post_events(client, store, *events[:1000])
    assert (result["accepted"], result["duplicates"]) == (1000, 0)
    assert stored(runtime) == (1000, 1000)


def _big_body() -> bytes:
    padding = "x" * (1024 * 1024)
    return orjson.dumps({"id": "e1", "type": "cart.updated", "padding": padding})


def test_a_body_over_1_mib_is_413(client: TestClient, runtime: Runtime, store: StoreKeys) -> None:
    body = problem(post_raw(client, store, _big_body()), 413, "body_too_large")
    assert body["detail"] == "The body is over the limit of 1048576 bytes"
    assert stored(runtime) == (0, 0)


def test_a_chunked_body_over_1_mib_without_content_length_is_413(
    client: TestClient, runtime: Runtime, store: StoreKeys
) -> None:
    raw = _big_body()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    response = client.post(
        "/v1/events",
        content=chunks(),
        headers={**store.auth, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    problem(response, 413, "body_too_large")
    assert stored(runtime) == (0, 0)


def test_a_chunked_body_under_the_limit_is_accepted(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    raw = orjson.dumps([cart_updated(at=clock.now())])

    def chunks() -> Iterator[bytes]:
        yield raw[:10]
        yield raw[10:]

    response = client.post(
        "/v1/events", content=chunks(), headers={**store.auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert stored(runtime) == (1, 1)


# --- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Bearer ", "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "missing_api_key"),
        ("Bearer cb_sk_not-a-real-key", "invalid_api_key"),
        ("Bearer something-else", "invalid_api_key"),
    ],
)
def test_a_missing_or_wrong_api_key_is_401(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    authorization: str | None,
    code: str,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/v1/events", json=cart_updated(at=clock.now()), headers=headers)
    problem(response, 401, code)
    assert stored(runtime) == (0, 0)


def test_a_bad_key_is_refused_before_the_body_is_judged(
    client: TestClient, runtime: Runtime, store: StoreKeys
) -> None:
    response = client.post(
        "/v1/events", content=b"{not json", headers={"Authorization": "Bearer cb_sk_wrong"}
    )
    problem(response, 401, "invalid_api_key")
    assert stored(runtime) == (0, 0)


def test_the_public_key_is_not_accepted_on_the_server_api(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    response = client.post(
        "/v1/events",
        json=cart_updated(at=clock.now()),
        headers={"Authorization": f"Bearer {store.public_key}"},
    )
    body = problem(response, 401, "public_key_not_allowed")
    assert body["detail"] == (
        "This is the store's public key; the server API takes the secret API key"
    )
    assert stored(runtime) == (0, 0)


# --- good shapes ------------------------------------------------------------------------


def test_a_single_event_object_is_accepted(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    event = cart_updated(at=clock.now(), event_id="evt-one", items=[item(quantity=2)])
    response = client.post("/v1/events", json=event, headers=store.auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "results": [{"id": "evt-one", "status": "accepted"}],
    }
    assert stored(runtime) == (1, 1)
    assert client.get("/v1/carts/cart-1", headers=store.auth).json()["item_count"] == 2


def test_a_json_array_and_an_events_object_are_accepted(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    first = cart_updated("cart-a", at=clock.now(), event_id="evt-a")
    second = order_placed("order-a", at=clock.now(), cart_id="cart-a")
    array = client.post("/v1/events", json=[first, second], headers=store.auth)
    assert array.json() == {
        "accepted": 2,
        "duplicates": 0,
        "results": [
            {"id": "evt-a", "status": "accepted"},
            {"id": second["id"], "status": "accepted"},
        ],
    }
    third = cart_updated("cart-b", at=clock.now(), event_id="evt-b")
    wrapped = client.post("/v1/events", json={"events": [third]}, headers=store.auth)
    assert wrapped.json()["results"] == [{"id": "evt-b", "status": "accepted"}]
    assert stored(runtime) == (3, 2)
    assert client.get("/v1/carts/cart-a", headers=store.auth).json()["status"] == "purchased"


def test_a_duplicate_id_inside_one_batch_is_applied_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    event = cart_updated(at=clock.now(), event_id="evt-twice", items=[item(quantity=4)])
    again = cart_updated(at=clock.now(), event_id="evt-twice", items=[item(quantity=9)])
    result = post_events(client, store, event, again)
    assert result == {
        "accepted": 1,
        "duplicates": 1,
        "results": [
            {"id": "evt-twice", "status": "accepted"},
            {"id": "evt-twice", "status": "duplicate"},
        ],
    }
    assert stored(runtime) == (1, 1)
    cart = client.get("/v1/carts/cart-1", headers=store.auth).json()
    assert cart["item_count"] == 4
    assert [e["kind"] for e in cart["timeline"]] == ["event.cart.updated"]


def test_the_same_event_id_in_two_stores_is_two_events(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    from support.factories import make_store

    other = make_store(runtime, clock, name="Other Shop")
    post_events(client, store, cart_updated(at=clock.now(), event_id="evt-shared"))
    result = post_events(client, other, cart_updated(at=clock.now(), event_id="evt-shared"))
    assert result["accepted"] == 1
    assert stored(runtime) == (2, 2)


# --- anything at all --------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["cart.updated", "order.placed", "2026-01-05T09:00:00Z", "USD", "events"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["id", "type", "occurred_at", "cart", "items", "events", "contact", "order", "x"]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=json_values)
def test_no_json_body_ever_gets_a_5xx(
    client: TestClient, runtime: Runtime, store: StoreKeys, value: Any
) -> None:
    before = stored(runtime)
    # the stdlib encoder: orjson refuses integers beyond 64 bits, a client may not
    response = post_raw(client, store, json.dumps(value).encode())
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"]
        assert stored(runtime) == before


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.binary(max_size=200))
def test_no_byte_string_ever_gets_a_5xx(
    client: TestClient, runtime: Runtime, store: StoreKeys, raw: bytes
) -> None:
    before = stored(runtime)
    response = post_raw(client, store, raw)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.headers["content-type"] == PROBLEM
        assert stored(runtime) == before


@pytest.mark.parametrize(
    ("path", "value", "status"),
    [
        # PostgreSQL cannot store U+0000 in text or JSONB
        ("cart.items.0.name", "Linen\u0000shirt", 422),
        ("cart.id", "cart\u00001", 422),
        ("id", "evt\u0000x", 422),
        ("contact.first_name", "An\u0000n", 422),
        # valid ISO 8601 with no UTC equivalent
        ("occurred_at", "9999-12-31T23:59:59-14:00", 422),
        ("occurred_at", "0001-01-01T00:00:00+14:00", 422),
        ("occurred_at", "2026-01-05T09:00:00+14:00", 200),
        ("cart.items.0.unit_price", 10**12, 200),
        ("cart.items.0.unit_price", 10**12 + 1, 422),
        ("cart.items.0.quantity", 100_000, 200),
        # each item is in range, their sum overflows 64 bits
        ("cart.items", [item(f"SKU-{n}", price=10**12, quantity=100_000) for n in range(500)], 422),
        ("contact.timezone", "Not/AZone", 422),
        ("contact.timezone", "../../etc/passwd", 422),
        ("contact.locale", "xx_YY_ZZZZZZZZZZ", 422),
    ],
)
def test_edge_values_get_a_clear_answer_never_a_5xx(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    path: str,
    value: Any,
    status: int,
) -> None:
    event = _with(cart_updated(at=clock.now()), path, value)
    response = client.post("/v1/events", json=event, headers=store.auth)
    assert response.status_code == status, response.text
    if status == 422:
        body = problem(response, 422, "invalid_event")
        assert fields(body) == [path.replace(".0.", "[0].")]
        assert stored(runtime) == (0, 0)
    else:
        assert stored(runtime) == (1, 1)


def test_an_event_dated_beyond_the_clock_skew_is_refused_and_changes_nothing(
    client: TestClient, clock: ManualClock, store: StoreKeys, runtime: Runtime
) -> None:
    fine = cart_updated("cart-ok", at=clock.now() + timedelta(minutes=59))
    ahead = cart_updated("cart-ahead", at=clock.now() + timedelta(hours=2))
    response = client.post("/v1/events", json=[fine, ahead], headers=store.auth)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "occurred_in_future"
    assert [e["field"] for e in body["errors"]] == ["[1].occurred_at"]
    assert client.get("/v1/carts/cart-ok", headers=store.auth).status_code == 404
    accepted = client.post("/v1/events", json=fine, headers=store.auth)
    assert accepted.status_code == 200
