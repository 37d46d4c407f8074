"""WooCommerce order webhooks: verify a delivery, then map the order to our events. Pure:
the raw body and headers in, :class:`~cartback.ingest.platforms._common.Mapped` out.

An unpaid order is the cart: ``pending``, ``failed``, ``on-hold`` and ``checkout-draft``
orders become ``cart.updated`` (cart id: the order id; restore URL: ``payment_url``);
``processing`` and ``completed`` ones ``order.placed`` (cart id: the same order id, else the
buyer's latest open cart within the attribution window). Other statuses (cancelled,
refunded, ...) change nothing. ``order.deleted`` clears the order's cart.

WooCommerce's delivery id is ``wp_hash(webhook id . time())``: two deliveries of one
webhook in the same second share it. So the event id is the body's SHA-256: the same body
twice is a duplicate, and no two versions of an order collide. A version older than the
cart's (``date_modified_gmt``) is stale.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cartback.errors import BadRequest
from cartback.ingest.platforms._common import (
    Fields,
    Mapped,
    Ref,
    body_digest,
    build,
    invalid,
    load_json,
    not_after,
    same_base64_hmac,
    to_minor,
)
from cartback.ingest.schemas import CartCleared, CartUpdated, CheckoutStarted, OrderPlaced

PLATFORM = "woocommerce"
TOPICS = ("order.created", "order.updated", "order.deleted")
OPEN = frozenset({"pending", "failed", "on-hold", "checkout-draft"})
PLACED = frozenset({"processing", "completed"})
SIGNATURE = "X-WC-Webhook-Signature"
_PING = re.compile(rb"webhook_id=\d{1,20}")
# wp_specialchars_decode($secret, ENT_QUOTES): the only entities WooCommerce undoes
_WP_ENTITIES = (
    ("&#039;", "'"),
    ("&#x27;", "'"),
    ("&quot;", '"'),
    ("&#034;", '"'),
    ("&#x22;", '"'),
    ("&lt;", "<"),
    ("&#060;", "<"),
    ("&gt;", ">"),
    ("&#062;", ">"),
    ("&amp;", "&"),
    ("&#038;", "&"),
    ("&#x26;", "&"),
)


def signing_key(secret: str) -> str:
    """The secret as WooCommerce signs with it: ``wp_specialchars_decode(..., ENT_QUOTES)``."""
    for entity, char in _WP_ENTITIES:
        secret = secret.replace(entity, char)
    return secret


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(secret, raw body))."""
    return same_base64_hmac([signing_key(secret)], body, _header(headers, SIGNATURE))


def is_ping(body: bytes, headers: Mapping[str, str]) -> bool:
    """WooCommerce's activation ping: the form body ``webhook_id=<id>``, unsigned. It must
    get a 200, or the webhook is not activated."""
    return _header(headers, SIGNATURE) is None and _PING.fullmatch(body.strip()) is not None


def topic(headers: Mapping[str, str]) -> str | None:
    return _header(headers, "X-WC-Webhook-Topic")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower())


def map_webhook(topic: str | None, body: bytes, *, now: datetime) -> Mapped:
    """The delivery's order as our events (see the module's docstring)."""
    if not topic:
        raise BadRequest("The X-WC-Webhook-Topic header is missing", code="missing_header")
    if topic not in (*TOPICS, "order.restored"):
        return Mapped.ignored(PLATFORM, f"topic {topic!r} is not one cartback uses")
    doc = Fields(load_json(body))
    order_id = doc.ident("id")
    if order_id is None:
        raise invalid("id", "missing")
    event_id = f"{PLATFORM}:{order_id}:{body_digest(body)[:32]}"
    if topic == "order.deleted":
        event = build(
            CartCleared,
            {"id": event_id, "type": "cart.cleared", "occurred_at": now, "cart": {"id": order_id}},
            f"WooCommerce {topic}",
        )
        return Mapped(PLATFORM, event)
    status = doc.text("status")
    if status in OPEN:
        return _cart(doc, order_id, event_id, now, f"WooCommerce {topic}")
    if status in PLACED:
        return _order(doc, order_id, event_id, now, f"WooCommerce {topic}")
    return Mapped.ignored(PLATFORM, f"status {status!r} is neither an open cart nor an order")


def _modified(doc: Fields, now: datetime) -> datetime:
    return not_after(doc.when("date_modified_gmt") or doc.when("date_created_gmt") or now, now)


def _cart(doc: Fields, order_id: str, event_id: str, now: datetime, what: str) -> Mapped:
    currency = doc.currency("currency")
    if currency is None:
        raise invalid("currency", "missing")
    at = _modified(doc, now)
    lines = [_line(line, currency) for line in doc.objects("line_items")]
    restore = doc.text("payment_url")
    event = build(
        CartUpdated,
        {
            "id": event_id,
            "type": "cart.updated",
            "occurred_at": at,
            "cart": {
                "id": order_id,
                "currency": currency,
                "items": [line for line in lines if line is not None],
                "restore_url": restore if restore and restore.startswith("http") else None,
            },
            "contact": _contact(doc),
        },
        what,
    )
    started = build(
        CheckoutStarted,
        {
            "id": f"{event_id}:checkout",
            "type": "checkout.started",
            "occurred_at": at,
            "cart": {"id": order_id},
        },
        what,
    )
    return Mapped(PLATFORM, event, started=started)


def _line(line: Fields, currency: str) -> dict[str, Any] | None:
    quantity = line.count("quantity")
    if not quantity:
        return None
    # subtotal: the line before coupons, excluding tax, as a decimal string
    subtotal = line.amount("subtotal")
    if subtotal is None:
        raise invalid(line.path("subtotal"), "missing")
    sku = line.text("sku") or line.ident("variation_id") or line.ident("product_id")
    if sku is None:
        raise invalid(line.path("sku"), "missing, and so are variation_id and product_id")
    name = html.unescape(line.text("name") or "") or sku  # "Ship Your Idea &ndash; Black"
    image = line.obj("image").text("src")
    return {
        "sku": sku,
        "name": name[:500],
        "unit_price": to_minor(subtotal / Decimal(quantity), currency, line.path("subtotal")),
        "quantity": quantity,
        "image_url": image if image and image.startswith("http") else None,
    }


def _contact(doc: Fields) -> dict[str, Any] | None:
    billing = doc.obj("billing")
    email, phone = billing.text("email"), billing.text("phone")
    external_id = doc.ident("customer_id")  # 0: a guest
    if not (email or phone or external_id):
        return None
    return {
        "email": email,
        "phone": phone,
        "first_name": billing.text("first_name", 100),
        "external_id": external_id,
        "country": billing.country("country") or doc.obj("shipping").country("country"),
    }


def _order(doc: Fields, order_id: str, event_id: str, now: datetime, what: str) -> Mapped:
    currency = doc.currency("currency")
    total = doc.amount("total")
    if currency is None or total is None:
        raise invalid("total" if total is None else "currency", "missing")
    placed = (
        doc.when("date_paid_gmt")
        or doc.when("date_modified_gmt")
        or doc.when("date_created_gmt")
        or now
    )
    event = build(
        OrderPlaced,
        {
            "id": event_id,
            "type": "order.placed",
            "occurred_at": not_after(placed, now),
            "order": {
                "id": order_id,
                "cart_id": order_id,
                "total": to_minor(total, currency, "total"),
                "currency": currency,
                "discount_codes": [
                    code for c in doc.objects("coupon_lines") if (code := c.text("code", 100))
                ],
            },
            "contact": _contact(doc),
        },
        what,
    )
    return Mapped(PLATFORM, event, refs=(Ref(order_id),))
