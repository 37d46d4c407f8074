"""The demo store's own web pages, served by the demo's server beside the API.

A reminder's links and images must work for someone browsing the demo's outbox offline,
so the demo store lives on the same ``http://127.0.0.1:<port>``, under ``/demo``:

- ``/demo/``: the store front (the store's ``url`` in the email's header and footer);
- ``/demo/p/<slug>``: a product page (the items' ``url``), with an add-to-cart button;
- ``/demo/cart``: the cart in this browser; ``/demo/checkout``: the checkout form (email,
  phone, the consent box); ``/demo/thanks``: after the order;
- ``/demo/img/<slug>.svg``: a product image, a coloured tile with its initials;
- ``/demo/cart/<cart id>``: the cart a restore link lands on after ``/r/<token>``
  (which counts the click and redirects here with the UTM parameters); it shows the cart
  as cartback stored it and makes it this browser's cart again.

Every page carries the snippet's one tag (``/cartback.js``), so a person can play the
shopper: what they do reaches cartback through ``/v1/collect`` exactly as from a store.
The demo shop's backend (``POST /demo/order``) tells cartback about orders through
``POST /v1/events`` with its own API key, as a store's server would. Pages load nothing
from anywhere else. Only the demo's app has these routes: :func:`demo_app`.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.app import Runtime, create_app
from cartback.carts.models import Cart
from cartback.core.db import transaction
from cartback.demo import pages
from cartback.demo.catalogue import BY_SLUG, CURRENCY, STORE_NAME, STORE_PATH, store_settings
from cartback.demo.pages import DEMO_NOTE, Shop
from cartback.stores.models import Store
from cartback.stores.service import NewStore, add_api_key, create_store

__all__ = ["DEMO_NOTE", "create_demo_store", "demo_app"]

_IMAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "public, max-age=3600",
}
_SCRIPT_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
MAX_ORDER_LINES = 50


def create_demo_store(session: Session, *, now: datetime, base_url: str) -> NewStore:
    """The demo store, its links on the demo's server at ``base_url``."""
    return create_store(session, name=STORE_NAME, now=now, settings=store_settings(base_url))


def demo_app(runtime: Runtime, store_id: str) -> FastAPI:
    """The app the demo serves: cartback's own, plus the demo store's pages for
    ``store_id`` (its links are on ``runtime.settings.base_url``)."""
    with transaction(runtime.sessions) as session:
        store = session.get(Store, store_id)
        assert store is not None, f"no store {store_id}"
        shop = Shop(public_key=store.public_key)
        backend_key = add_api_key(session, store_id=store_id, now=runtime.clock.now())
    app = create_app(runtime)
    app.include_router(demo_router(runtime, store_id, shop, backend_key))
    return app


def demo_router(runtime: Runtime, store_id: str, shop: Shop, backend_key: str) -> APIRouter:
    router = APIRouter(prefix=STORE_PATH, include_in_schema=False)
    script = resources.files("cartback.demo").joinpath("shop.js").read_bytes()

    @router.get("/")
    def front() -> Response:
        return shop.page(STORE_NAME, pages.front_body())

    @router.get("/p/{slug}")
    def product(slug: str) -> Response:
        found = BY_SLUG.get(slug.lower())
        if found is None:
            return shop.not_found("No such product")
        return shop.page(f"{found.name} — {STORE_NAME}", pages.product_body(found))

    @router.get("/img/{slug}.svg")
    def image(slug: str) -> Response:
        found = BY_SLUG.get(slug.lower())
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response(
            pages.product_svg(found), media_type="image/svg+xml", headers=_IMAGE_HEADERS
        )

    @router.get("/shop.js")
    def shop_script() -> Response:
        return Response(script, media_type="text/javascript", headers=_SCRIPT_HEADERS)

    @router.get("/cart")
    def browser_cart() -> Response:
        return shop.page(f"{STORE_NAME} — your cart", pages.browser_cart_body())

    @router.get("/checkout")
    def checkout() -> Response:
        return shop.page(f"Checkout — {STORE_NAME}", pages.checkout_body())

    @router.get("/thanks")
    def thanks() -> Response:
        return shop.page(f"Thank you — {STORE_NAME}", pages.thanks_body())

    @router.get("/cart/{cart_id}")
    def cart(cart_id: str) -> Response:
        with runtime.readers() as session:
            found = session.execute(
                select(Cart.items, Cart.value, Cart.currency, Cart.status).where(
                    Cart.store_id == store_id, Cart.external_id == cart_id
                )
            ).one_or_none()
        if found is None:
            return shop.not_found("No such cart")
        items, value, currency, status = found
        return shop.page(
            f"{STORE_NAME} — your cart",
            pages.restored_cart_body(cart_id, items, value, currency, status),
        )

    @router.post("/order")
    async def order(request: Request) -> Response:
        """The demo shop's backend: an order from the checkout form, told to cartback."""
        try:
            body = await request.json()
            event = order_event(body, at=runtime.clock.now())
        except (ValueError, TypeError, KeyError) as exc:
            return JSONResponse({"detail": f"not an order: {exc}"}, status_code=400)
        async with httpx.AsyncClient(base_url=runtime.settings.base_url, timeout=10) as client:
            answer = await client.post(
                "/v1/events", json=event, headers={"Authorization": f"Bearer {backend_key}"}
            )
        if answer.status_code != 200:  # a 4xx: the form's input (an email cartback refuses)
            return JSONResponse(
                {"detail": answer.text}, status_code=400 if answer.status_code < 500 else 502
            )
        return JSONResponse({"order": event["order"]["id"]})

    return router


def order_event(body: Any, *, at: datetime) -> dict[str, Any]:
    """``{"cart_id", "email", "items": [{"sku", "quantity"}]}`` from the checkout form ->
    the ``order.placed`` event, priced from the catalogue (never from the browser).

    The ids come from the cart's: placing the same order twice is one order.
    """
    cart_id = str(body["cart_id"])[:150]
    lines = body["items"]
    if not cart_id or not isinstance(lines, list) or not 0 < len(lines) <= MAX_ORDER_LINES:
        raise ValueError("cart_id and 1 to 50 items are required")
    total = 0
    for line in lines:
        product = BY_SLUG.get(str(line["sku"]).lower())
        quantity = int(line["quantity"])
        if product is None or not 0 < quantity <= 100:
            raise ValueError(f"no product {line['sku']!r} or a bad quantity")
        total += product.price * quantity
    contact: dict[str, Any] = {"email": str(body["email"])[:320]}
    return {
        "id": f"order-{cart_id}",
        "type": "order.placed",
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "order": {
            "id": f"order-{cart_id}",
            "cart_id": cart_id,
            "total": total,
            "currency": CURRENCY,
        },
        "contact": contact,
    }
