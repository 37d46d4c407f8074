"""A shopper's browser as the snippet tests drive it: posts to /v1/collect the way
cartback.js does (text/plain, one visitor id, client event ids), and views of what it
left behind."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.carts.models import Cart, TimelineEntry
from cartback.core.clock import ManualClock
from support.factories import StoreKeys, iso

ORIGIN = "https://acme.test"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PROBLEM = "application/problem+json"


@dataclass
class Browser:
    """One shopper's browser on the store's site."""

    client: TestClient
    store: StoreKeys
    clock: ManualClock
    visitor: str = field(default_factory=lambda: str(uuid.uuid4()))
    origin: str | None = ORIGIN
    user_agent: str = CHROME
    webdriver: bool = False

    def event(self, type_: str, at: datetime | None = None, **data: Any) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "type": type_, "at": iso(at or self.clock.now()), **data}

    def post(self, *events: dict[str, Any], key: str | None = None, **extra: Any) -> Any:
        body = {
            "key": self.store.public_key if key is None else key,
            "visitor": self.visitor,
            "webdriver": self.webdriver,
            "events": list(events),
            **extra,
        }
        return self.send(json.dumps(body).encode())

    def send(self, raw: bytes, content_type: str = "text/plain;charset=UTF-8") -> Any:
        headers = {"Content-Type": content_type, "User-Agent": self.user_agent}
        if self.origin is not None:
            headers["Origin"] = self.origin
        return self.client.post("/v1/collect", content=raw, headers=headers)

    def ok(self, *events: dict[str, Any]) -> None:
        response = self.post(*events)
        assert response.status_code == 204, response.text
        assert response.content == b""

    def cart(self, items: list[dict[str, Any]] | None = None, cart_id: str | None = None) -> Any:
        cart: dict[str, Any] = {
            "currency": "USD",
            "items": [line()] if items is None else items,
            "restore_url": "https://acme.test/cart",
        }
        if cart_id is not None:
            cart["id"] = cart_id
        return self.event("cart.updated", cart=cart)

    def capture(self, email: str | None = "ann@example.com", **data: Any) -> dict[str, Any]:
        if email is not None:
            data["email"] = email
        return self.event("contact.captured", source=data.pop("source", "field"), **data)

    def submit(self, offer: str, email: str | None = "ann@example.com", **data: Any) -> Any:
        if email is not None:
            data["email"] = email
        return self.event("prompt.submitted", prompt="exit_intent", offer=offer, **data)


def line(sku: str = "TEE-1", price: int = 1999, quantity: int = 1) -> dict[str, Any]:
    return {
        "sku": sku,
        "name": "Linen shirt",
        "unit_price": price,
        "quantity": quantity,
        "url": f"https://acme.test/p/{sku.lower()}",
        "image_url": f"https://acme.test/i/{sku.lower()}.jpg",
    }


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def carts_of(runtime: Runtime, store: StoreKeys) -> list[Cart]:
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Cart).where(Cart.store_id == store.id)))
        session.expunge_all()
        return rows


def timeline_kinds(runtime: Runtime, cart_id: str) -> list[str]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.cart_id == cart_id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
        )
