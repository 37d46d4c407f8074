"""Deterministic, typed factories for tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import create_store

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class StoreKeys:
    id: str
    api_key: str
    public_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def make_store(
    runtime: Runtime, clock: ManualClock, *, name: str = "Acme Shoes", **settings: Any
) -> StoreKeys:
    options: dict[str, Any] = {
        "sender_email": "hello@acme.test",
        "url": "https://acme.test",
        "currency": "USD",
        "address": "1 Market St, Springfield",
        "support_email": "help@acme.test",
    }
    options.update(settings)
    with transaction(runtime.sessions) as session:
        made = create_store(
            session, name=name, now=clock.now(), settings=StoreSettings.model_validate(options)
        )
        return StoreKeys(made.store.id, made.api_key, made.store.public_key)


def use_flow(
    runtime: Runtime, clock: ManualClock, keys: StoreKeys, definition: dict[str, Any]
) -> None:
    """Save ``definition`` (as a store would write it in YAML) as the store's flow."""
    from cartback.flows.definition import FlowDefinition
    from cartback.flows.service import set_flow

    with transaction(runtime.sessions) as session:
        set_flow(
            session,
            store_id=keys.id,
            now=clock.now(),
            definition=FlowDefinition.model_validate(definition),
        )


_counter = iter(range(1, 10**9))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def item(
    sku: str = "TEE-1", *, price: int = 1999, quantity: int = 1, name: str = "T-shirt"
) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": name,
        "unit_price": price,
        "quantity": quantity,
        "url": f"https://acme.test/p/{sku.lower()}",
        "image_url": f"https://acme.test/i/{sku.lower()}.jpg",
    }


def cart_updated(
    cart_id: str = "cart-1",
    *,
    at: datetime,
    items: list[dict[str, Any]] | None = None,
    email: str | None = "ann@example.com",
    first_name: str | None = "Ann",
    currency: str = "USD",
    event_id: str | None = None,
    **contact: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id or f"evt-{next(_counter)}",
        "type": "cart.updated",
        "occurred_at": iso(at),
        "cart": {
            "id": cart_id,
            "currency": currency,
            "items": [item()] if items is None else items,
            "restore_url": f"https://acme.test/cart/{cart_id}",
        },
    }
    if email or contact:
        event["contact"] = {"email": email, "first_name": first_name, **contact}
    return event


def order_placed(
    order_id: str = "order-1",
    *,
    at: datetime,
    cart_id: str | None = "cart-1",
    total: int = 1999,
    email: str | None = None,
    currency: str = "USD",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"evt-{next(_counter)}",
        "type": "order.placed",
        "occurred_at": iso(at),
        "order": {"id": order_id, "cart_id": cart_id, "total": total, "currency": currency},
    }
    if email:
        event["contact"] = {"email": email}
    return event


def post_events(client: TestClient, keys: StoreKeys, *events: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/events", json=list(events), headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def run_due(runtime: Runtime) -> int:
    """Run every job that is due at the clock's now (and what those make due), like a
    worker would; returns how many ran."""
    total = 0
    with runtime.worker(concurrency=1, batch_size=100) as worker:
        while (ran := worker.run_once()) > 0:
            total += ran
    return total


def advance(runtime: Runtime, clock: ManualClock, delta: timedelta) -> int:
    clock.advance(delta)
    return run_due(runtime)
