"""The demo store's HTML: plain server-rendered pages, each with the snippet's one tag.

What the shopper does in the browser (the cart kept in the browser, add to cart, the
checkout form) is the demo shop's own script, ``shop.js``: it is the store's code, and it
talks to cartback only through the snippet's API, as a real store's pages would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

from cartback.carts.models import CartStatus
from cartback.content import format_money
from cartback.demo.catalogue import (
    BY_SLUG,
    CATALOGUE,
    CONSENT_TEXT,
    CURRENCY,
    LOCALE,
    STORE_NAME,
    STORE_PATH,
    Product,
)

DEMO_NOTE = "This is the demo store; in your shop this link restores the shopper's cart."
# Pages load only this server's scripts, styles and images, and talk only to it; the
# snippet's prompt styles itself with a constructed style sheet (or inline, as a fallback).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}
_STYLE = """*{box-sizing:border-box}body{margin:0;font-family:system-ui,sans-serif;color:#1f2937;
background:#f3f4f6;line-height:1.5}a{color:inherit}
header{display:flex;justify-content:space-between;background:#111827;color:#fff;
padding:.9rem 1.5rem;font-weight:600;letter-spacing:.02em}header a{text-decoration:none}
main{max-width:44rem;margin:2rem auto;padding:0 1rem}
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
.product{display:flex;gap:1.5rem;align-items:center}.price{font-size:1.3rem;font-weight:700}
.button,button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;border:0;
border-radius:8px;background:#111827;color:#fff;font:inherit;font-weight:600;
text-decoration:none;cursor:pointer}.qty button{margin:0 .25rem;padding:.1rem .6rem}
:focus-visible{outline:3px solid #2563eb;outline-offset:2px}
form label{display:block;margin-top:1rem;font-weight:600}
form input[type=email],form input[type=tel]{width:100%;padding:.55rem .7rem;font:inherit;
border:1px solid #9ca3af;border-radius:8px}
form .consent{display:flex;gap:.5rem;align-items:flex-start;font-weight:400}
form .consent input{margin-top:.35rem}
footer{max-width:44rem;margin:0 auto 2rem;padding:0 1rem;color:#6b7280;font-size:.85rem}"""

_STATUS_TEXT: dict[str, str] = {
    CartStatus.PURCHASED: "Ordered",
    CartStatus.RECOVERED: "Ordered after a reminder",
    CartStatus.EXPIRED: "Expired",
    CartStatus.CLEARED: "Emptied",
}


@dataclass(frozen=True)
class Shop:
    """What every page needs: the store's public key for the snippet's tag."""

    public_key: str

    def page(self, title: str, body: str, status: int = 200) -> HTMLResponse:
        # The snippet's one tag, as a store adds it; shop.js is the store's own code.
        scripts = (
            f"<script async src='/cartback.js' data-key='{escape(self.public_key)}'></script>"
            f"<script defer src='{STORE_PATH}/shop.js'></script>"
        )
        return HTMLResponse(
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<header><a href='{STORE_PATH}/'>{escape(STORE_NAME)}</a>"
            f"<a href='{STORE_PATH}/cart' class=cart-link>Cart (<span data-cart-count>0</span>)"
            f"</a></header><main>{body}</main><footer>cartback's demo store: every reminder "
            "it sends lands in the <a href='/outbox'>outbox</a>.</footer>"
            f"{scripts}</body></html>",
            status_code=status,
            headers=PAGE_HEADERS,
        )

    def not_found(self, text: str) -> HTMLResponse:
        return self.page(text, f"<div class=card><h1>{escape(text)}</h1></div>", status=404)


def money(amount: int, currency: str = CURRENCY) -> str:
    return escape(format_money(amount, currency, LOCALE))


def front_body() -> str:
    tiles = "".join(
        f"<a href='{escape(p.page_path)}'><div class=card>"
        f"<img src='{escape(p.image_path)}' alt='' width=160 height=160>"
        f"<div>{escape(p.name)}</div><div class=muted>{money(p.price)}</div></div></a>"
        for p in CATALOGUE
    )
    return f"<h1>{escape(STORE_NAME)}</h1><div class=grid>{tiles}</div>"


def product_body(product: Product) -> str:
    """The product's page: its data on ``#product`` for shop.js (the snippet's product
    view, the add-to-cart button)."""
    data = {
        "sku": product.sku,
        "name": product.name,
        "price": product.price,
        "currency": CURRENCY,
        "url": product.page_path,
        "image_url": product.image_path,
    }
    return (
        f"<div class='card product' id=product data-product='{escape(json.dumps(data))}'>"
        f"<img src='{escape(product.image_path)}' alt='' width=160 height=160><div>"
        f"<h1>{escape(product.name)}</h1><div class=price>{money(product.price)}</div>"
        f"<div class=muted>SKU {escape(product.sku)}</div>"
        "<button type=button class=add>Add to cart</button>"
        "<p class=added role=status></p></div></div>"
        "<p class=note>This is the demo store; in your shop this is the product's page.</p>"
    )


def browser_cart_body() -> str:
    """The cart in this browser, drawn by shop.js."""
    return (
        "<div class=card><h1>Your cart</h1><div id=cart><p class=muted>Loading ...</p></div></div>"
    )


def checkout_body() -> str:
    """The checkout form: the snippet captures ``#email`` and ``#phone`` as they are
    typed, in EU mode only once ``#consent`` is ticked."""
    return (
        "<div class=card><h1>Checkout</h1><div id=summary></div>"
        "<form id=checkout novalidate>"
        "<label for=email>Email</label>"
        "<input id=email name=email type=email autocomplete=email required>"
        "<label for=phone>Phone (optional)</label>"
        "<input id=phone name=phone type=tel autocomplete=tel>"
        f"<label class=consent for=consent><input id=consent name=consent type=checkbox>"
        f"<span>{escape(CONSENT_TEXT)}</span></label>"
        "<p class=error role=alert></p>"
        "<button type=submit>Place order</button></form></div>"
    )


def thanks_body() -> str:
    return (
        "<div class=card><h1>Thank you for your order</h1><p>This was the demo store: "
        "nothing ships. cartback was told about the order, so no reminder goes out for "
        f"this cart.</p><a class=button href='{STORE_PATH}/'>Back to the store</a></div>"
    )


def restored_cart_body(
    cart_id: str, items: list[dict[str, Any]], value: int, currency: str, status: str
) -> str:
    """Where a reminder's restore link lands: the cart as cartback stored it, which
    shop.js also makes this browser's cart (``#restored-cart``)."""
    badge = _STATUS_TEXT.get(status)
    rows = "".join(_cart_row(item, currency) for item in items)
    count = sum(int(item.get("quantity", 1)) for item in items)
    total = (
        f"<tr class=total><td></td><td>Total ({count} item{'' if count == 1 else 's'})</td>"
        f"<td class='num cart-total'>{money(value, currency)}</td></tr>"
    )
    table = (
        f"<table class=items>{rows}{total}</table>"
        if items
        else "<p class=muted>The cart is empty.</p>"
    )
    restorable = items and status not in (CartStatus.PURCHASED, CartStatus.RECOVERED)
    data = {"id": cart_id, "currency": currency, "items": items}
    return (
        "<div class=card><h1>Your cart</h1>"
        + (f"<div class=status>{escape(badge)}</div>" if badge else "")
        + table
        + (
            f"<a class=button href='{STORE_PATH}/checkout'>Checkout</a>"
            # JSON in a script element: "</" would end it early, so it is escaped
            "<script type=application/json id=restored-cart>"
            + json.dumps(data).replace("</", "<\\/")
            + "</script>"
            if restorable
            else ""
        )
        + f"<p class=note>{escape(DEMO_NOTE)}</p></div>"
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
        f"<div class=muted>Quantity: {quantity} × {money(unit, currency)}</div></td>"
        f"<td class=num>{money(unit * quantity, currency)}</td></tr>"
    )


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
