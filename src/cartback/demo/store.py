"""The demo store's own web pages, served by the demo's server beside the API.

A reminder's links and images must work for someone browsing the demo's outbox offline,
so the demo store lives on the same ``http://127.0.0.1:<port>``, under ``/demo``:

- ``/demo/``: the store front (the store's ``url`` in the email's header and footer);
- ``/demo/p/<slug>``: a product page (the items' ``url``);
- ``/demo/img/<slug>.svg``: a product image, a coloured tile with its initials;
- ``/demo/cart/<cart id>``: the cart a restore link lands on after ``/r/<token>``
  (which counts the click and redirects here with the UTM parameters).

The pages read the cart as cartback stored it (read-only); they count nothing and load
nothing from anywhere else (inline CSS, no scripts, images from ``/demo/img``). Only the
demo's app has these routes: :func:`demo_app`.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.app import Runtime, create_app
from cartback.carts.models import Cart, CartStatus
from cartback.content import format_money
from cartback.demo.catalogue import (
    BY_SLUG,
    CATALOGUE,
    CURRENCY,
    LOCALE,
    STORE_NAME,
    STORE_PATH,
    Product,
    store_settings,
)
from cartback.stores.service import NewStore, create_store

DEMO_NOTE = "This is the demo store; in your shop this link restores the shopper's cart."
# The pages load nothing but their own images: no script, no font, no other host.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'none'"
    ),
    "Cache-Control": "no-store",
}
_IMAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "public, max-age=3600",
}
_STYLE = """*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#1f2937;
background:#f3f4f6;line-height:1.5}a{color:inherit}
header{background:#111827;color:#fff;padding:.9rem 1.5rem;font-weight:600;letter-spacing:.02em}
header a{text-decoration:none}main{max-width:44rem;margin:2rem auto;padding:0 1rem}
.card{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.08);padding:1.5rem}
h1{font-size:1.5rem;margin:0 0 1rem}.items{width:100%;border-collapse:collapse}
.items td{padding:.75rem .5rem;border-bottom:1px solid #e5e7eb;vertical-align:middle}
.items img{display:block;border-radius:8px}.muted{color:#6b7280;font-size:.9rem}
.num{text-align:right;white-space:nowrap}.total td{border-bottom:0;font-weight:700;
font-size:1.1rem}.status{display:inline-block;padding:.15rem .6rem;border-radius:999px;
background:#e0e7ff;color:#3730a3;font-size:.85rem;margin-bottom:1rem}
.note{margin-top:1.5rem;padding:.9rem 1rem;border-left:4px solid #6366f1;background:#eef2ff;
border-radius:6px;font-size:.95rem}.grid{display:grid;gap:1rem;
grid-template-columns:repeat(auto-fill,minmax(10rem,1fr))}.grid a{text-decoration:none}
.grid .card{padding:1rem;text-align:center}.grid img{width:100%;height:auto;border-radius:8px}
.product{display:flex;gap:1.5rem;align-items:center}.price{font-size:1.3rem;font-weight:700}"""

_STATUS_TEXT: dict[str, str] = {
    CartStatus.PURCHASED: "Ordered",
    CartStatus.RECOVERED: "Ordered after a reminder",
    CartStatus.EXPIRED: "Expired",
    CartStatus.CLEARED: "Emptied",
}


def product_svg(product: Product) -> str:
    """A 160 px tile in the product's colour with its initials: a stand-in photo."""
    colour, initials = escape(product.colour), escape(product.initials)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160" '
        f'viewBox="0 0 160 160" role="img" aria-label="{escape(product.name)}">'
        '<clipPath id="tile"><rect width="160" height="160" rx="20"/></clipPath>'
        f'<g clip-path="url(#tile)"><rect width="160" height="160" fill="{colour}"/>'
        '<circle cx="132" cy="28" r="52" fill="#fff" fill-opacity=".14"/>'
        '<circle cx="20" cy="150" r="40" fill="#000" fill-opacity=".10"/></g>'
        '<text x="80" y="80" text-anchor="middle" dominant-baseline="central" '
        'font-family="system-ui,DejaVu Sans,Liberation Sans,Arial,sans-serif" '
        f'font-size="58" font-weight="700" fill="#fff">{initials}</text></svg>'
    )


def create_demo_store(session: Session, *, now: datetime, base_url: str) -> NewStore:
    """The demo store, its links on the demo's server at ``base_url``."""
    return create_store(session, name=STORE_NAME, now=now, settings=store_settings(base_url))


def demo_app(runtime: Runtime, store_id: str) -> FastAPI:
    """The app the demo serves: cartback's own, plus the demo store's pages for
    ``store_id`` (its links are on ``runtime.settings.base_url``)."""
    app = create_app(runtime)
    app.include_router(demo_router(runtime, store_id))
    return app


def demo_router(runtime: Runtime, store_id: str) -> APIRouter:
    router = APIRouter(prefix=STORE_PATH, include_in_schema=False)

    @router.get("/")
    def front() -> Response:
        tiles = "".join(
            f"<a href='{escape(p.page_path)}'><div class=card>"
            f"<img src='{escape(p.image_path)}' alt='' width=160 height=160>"
            f"<div>{escape(p.name)}</div><div class=muted>{_money(p.price)}</div></div></a>"
            for p in CATALOGUE
        )
        return _page(STORE_NAME, f"<h1>{escape(STORE_NAME)}</h1><div class=grid>{tiles}</div>")

    @router.get("/p/{slug}")
    def product(slug: str) -> Response:
        found = BY_SLUG.get(slug.lower())
        if found is None:
            return _not_found("No such product")
        body = (
            f"<div class='card product'><img src='{escape(found.image_path)}' alt='' "
            f"width=160 height=160><div><h1>{escape(found.name)}</h1>"
            f"<div class=price>{_money(found.price)}</div>"
            f"<div class=muted>SKU {escape(found.sku)}</div></div></div>"
            "<p class=note>This is the demo store; in your shop this is the product's page."
            "</p>"
        )
        return _page(f"{found.name} — {STORE_NAME}", body)

    @router.get("/img/{slug}.svg")
    def image(slug: str) -> Response:
        found = BY_SLUG.get(slug.lower())
        if found is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return Response(product_svg(found), media_type="image/svg+xml", headers=_IMAGE_HEADERS)

    @router.get("/cart/{cart_id}")
    def cart(cart_id: str) -> Response:
        with runtime.readers() as session:
            found = session.execute(
                select(Cart.items, Cart.value, Cart.currency, Cart.status).where(
                    Cart.store_id == store_id, Cart.external_id == cart_id
                )
            ).one_or_none()
        if found is None:
            return _not_found("No such cart")
        items, value, currency, status = found
        return _page(f"{STORE_NAME} — your cart", _cart_body(items, value, currency, status))

    return router


def _cart_body(items: list[dict[str, Any]], value: int, currency: str, status: str) -> str:
    badge = _STATUS_TEXT.get(status)
    rows = "".join(_cart_row(item, currency) for item in items)
    count = sum(int(item.get("quantity", 1)) for item in items)
    total = (
        f"<tr class=total><td></td><td>Total ({count} item{'' if count == 1 else 's'})</td>"
        f"<td class='num cart-total'>{_money(value, currency)}</td></tr>"
    )
    table = (
        f"<table class=items>{rows}{total}</table>"
        if items
        else "<p class=muted>The cart is empty.</p>"
    )
    return (
        "<div class=card><h1>Your cart</h1>"
        + (f"<div class=status>{escape(badge)}</div>" if badge else "")
        + f"{table}<p class=note>{escape(DEMO_NOTE)}</p></div>"
    )


def _cart_row(item: dict[str, Any], currency: str) -> str:
    quantity, unit = int(item.get("quantity", 1)), int(item.get("unit_price", 0))
    name = escape(str(item.get("name", "")))
    known = BY_SLUG.get(str(item.get("sku", "")).lower())
    image = f"<img src='{escape(known.image_path)}' alt='' width=64 height=64>" if known else ""
    if known is not None:
        name = f"<a href='{escape(known.page_path)}'>{name}</a>"
    return (
        f"<tr><td width=72>{image}</td><td><div class=cart-item>{name}</div>"
        f"<div class=muted>Quantity: {quantity} × {_money(unit, currency)}</div></td>"
        f"<td class=num>{_money(unit * quantity, currency)}</td></tr>"
    )


def _money(amount: int, currency: str = CURRENCY) -> str:
    return escape(format_money(amount, currency, LOCALE))


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><a href='{STORE_PATH}/'>{escape(STORE_NAME)}</a></header>"
        f"<main>{body}</main></body></html>",
        status_code=status,
        headers=_PAGE_HEADERS,
    )


def _not_found(text: str) -> HTMLResponse:
    return _page(text, f"<div class=card><h1>{escape(text)}</h1></div>", status=404)
