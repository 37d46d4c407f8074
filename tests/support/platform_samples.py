"""Shopify and WooCommerce as they send webhooks: the shared samples read byte for byte,
bodies built from them for the flows the samples do not show, and signatures made the
platforms' way (written out here, independently of the code under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from support.callback_samples import SAMPLES

SHOPIFY_SECRET = "hush"  # the key shopify_checkouts_create_request.txt is signed with
WOO_SECRET = "wc_webhook_test_secret"  # the key woocommerce_order_created_request.txt is
# Headers that belong to the connection: the test client sets its own.
_TRANSPORT = {"host", "content-length"}


@dataclass(frozen=True)
class RawRequest:
    headers: dict[str, str]  # as sent, minus the transport's own
    body: bytes  # exactly the bytes after the blank line


def raw_request(name: str) -> RawRequest:
    """A ``<name>.txt`` raw HTTP request, the body untouched (CRLF head, then the body)."""
    raw = (SAMPLES / f"{name}.txt").read_bytes()
    head, blank, body = raw.partition(b"\r\n\r\n")
    assert blank, f"{name}.txt has no blank line after its headers"
    headers: dict[str, str] = {}
    for line in head.decode("ascii").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    assert int(headers["Content-Length"]) == len(body), f"{name}.txt: body length"
    return RawRequest({k: v for k, v in headers.items() if k.lower() not in _TRANSPORT}, body)


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sample_bytes(name))
    return loaded


def hmac_b64(secret: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, raw body)): Shopify's and WooCommerce's signature."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- Shopify --------------------------------------------------------------------------------


def shopify_headers(
    topic: str,
    body: bytes,
    *,
    webhook_id: str,
    triggered_at: datetime | None = None,
    secret: str = SHOPIFY_SECRET,
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": hmac_b64(secret, body),
        "X-Shopify-Shop-Domain": "snowdevil.myshopify.com",
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id,
    }
    if triggered_at is not None:
        headers["X-Shopify-Triggered-At"] = iso(triggered_at)
    return headers


def shopify_checkout(
    token: str = "tok-1",
    *,
    updated_at: datetime,
    email: str | None = "ann@example.com",
    cart_token: str = "ct-1",
    prices: tuple[str, ...] = ("199.00",),
    **changes: Any,
) -> dict[str, Any]:
    """The checkouts/create sample, as another checkout: its token, time, shopper, lines."""
    checkout = sample("shopify_checkouts_create")
    line = checkout["line_items"][0]
    checkout.update(
        token=token,
        cart_token=cart_token,
        email=email,
        updated_at=iso(updated_at),
        abandoned_checkout_url=f"https://checkout.local/548380009/checkouts/{token}/recover?key=k",
        line_items=[{**line, "sku": f"SKU-{i}", "price": price} for i, price in enumerate(prices)],
        customer=None,
    )
    checkout.update(changes)
    return checkout


def shopify_order(
    order_id: int = 820982911946154508,
    *,
    at: datetime,
    checkout_token: str | None = "tok-1",
    cart_token: str | None = "ct-1",
    email: str | None = "ann@example.com",
    total: str = "199.00",
) -> dict[str, Any]:
    """The orders/create sample, as another order: its id, time, tokens, buyer, total."""
    order = sample("shopify_orders_create")
    order.update(
        id=order_id,
        checkout_token=checkout_token,
        cart_token=cart_token,
        checkout_id=None,
        email=email,
        contact_email=email,
        phone=None,
        customer=None,
        created_at=iso(at),
        processed_at=iso(at),
        total_price=total,
        total_price_set={
            "shop_money": {"amount": total, "currency_code": "USD"},
            "presentment_money": {"amount": total, "currency_code": "USD"},
        },
    )
    return order


# --- WooCommerce ----------------------------------------------------------------------------


def woo_headers(topic: str, body: bytes, *, secret: str = WOO_SECRET) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": hmac_b64(secret, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }


def woo_order(
    order_id: int = 728,
    *,
    status: str,
    modified: datetime,
    email: str = "john.doe@example.com",
    **changes: Any,
) -> dict[str, Any]:
    """The order.created sample, as another order in ``status``, modified at ``modified``."""
    order = sample("woocommerce_order_created")
    stamp = modified.strftime("%Y-%m-%dT%H:%M:%S")
    order.update(
        id=order_id,
        number=str(order_id),
        status=status,
        date_modified=stamp,
        date_modified_gmt=stamp,
        date_paid=stamp if status in ("processing", "completed") else None,
        date_paid_gmt=stamp if status in ("processing", "completed") else None,
        payment_url=f"https://example.com/checkout/order-pay/{order_id}/?pay_for_order=true",
    )
    order["billing"] = {**order["billing"], "email": email}
    order.update(changes)
    return order
