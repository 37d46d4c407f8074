"""The ingest edge middleware answers POST /v1/events exactly as the FastAPI route does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.api.problems import problem_response
from cartback.app import Runtime, create_app
from cartback.core.clock import ManualClock
from cartback.ingest import api as ingest_api
from cartback.ingest.api import IngestEdge
from support.factories import START, StoreKeys, cart_updated, make_store, order_placed


@pytest.fixture
def edge(runtime: Runtime) -> Iterator[TestClient]:
    app = create_app(runtime)
    app.add_middleware(IngestEdge, render=problem_response)
    with TestClient(app, raise_server_exceptions=False, base_url="http://cartback.test") as c:
        yield c


def answer(response: Any) -> tuple[int, str, Any]:
    body = response.json() if response.content else None
    return response.status_code, response.headers.get("content-type", ""), body


def snapshot(event_id: str, cart: str = "c1") -> dict[str, Any]:
    return cart_updated(cart, at=START, event_id=event_id)


REQUESTS: list[tuple[str, str, str, Any]] = [
    # (method, path, which key, body: JSON-able, bytes, or None)
    ("POST", "/v1/events", "good", snapshot("e1")),
    ("POST", "/v1/events", "good", snapshot("e1")),  # a duplicate
    ("POST", "/v1/events", "good", [snapshot("e2", "c2"), snapshot("e3", "c2")]),
    ("POST", "/v1/events", "good", {"events": [snapshot("e4", "c3")]}),
    ("POST", "/v1/events", "good", order_placed("o1", at=START, cart_id="c1")),
    ("POST", "/v1/events", "good", b'{"id": "e6", "type": '),
    ("POST", "/v1/events", "good", b""),
    ("POST", "/v1/events", "good", {**snapshot("e7"), "type": "cart.exploded"}),
    ("POST", "/v1/events", "good", cart_updated("c4", at=START, event_id="e8", currency="usd")),
    ("POST", "/v1/events", "good", cart_updated("c5", at=START + timedelta(hours=2))),
    ("POST", "/v1/events", "good", b"[" + b" " * (1024 * 1024) + b"]"),
    ("POST", "/v1/events", "none", snapshot("e9")),
    ("POST", "/v1/events", "wrong", snapshot("e10")),
    ("GET", "/v1/events", "good", None),
    ("POST", "/v1/events/", "good", snapshot("e11")),
]


def send(client: TestClient, keys: StoreKeys, method: str, path: str, key: str, body: Any) -> Any:
    headers = {"Content-Type": "application/json"}
    if key == "good":
        headers.update(keys.auth)
    elif key == "wrong":
        headers["Authorization"] = "Bearer cb_sk_not-a-key"
    if body is None:
        return client.request(method, path, headers=headers)
    if isinstance(body, bytes):
        return client.request(method, path, headers=headers, content=body)
    return client.request(method, path, headers=headers, json=body)


def test_every_answer_is_the_routes_answer(
    runtime: Runtime, clock: ManualClock, client: TestClient, edge: TestClient
) -> None:
    # the same requests, each app with a store of its own (event ids are per store)
    routed = make_store(runtime, clock, name="routed")
    edged = make_store(runtime, clock, name="edged")
    for method, path, key, body in REQUESTS:
        expected = answer(send(client, routed, method, path, key, body))
        assert answer(send(edge, edged, method, path, key, body)) == expected, (method, body)


def test_an_unexpected_error_is_the_apps_500_problem(
    runtime: Runtime,
    clock: ManualClock,
    client: TestClient,
    edge: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = make_store(runtime, clock)

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(ingest_api, "refuse_future", broken)
    expected = answer(send(client, keys, "POST", "/v1/events", "good", snapshot("e1")))
    assert expected[0] == 500
    assert answer(send(edge, keys, "POST", "/v1/events", "good", snapshot("e2"))) == expected
