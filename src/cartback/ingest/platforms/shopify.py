"""Shopify webhooks: verify a delivery, then map its resource to our events. Pure: the
raw body and headers in, :class:`~cartback.ingest.platforms._common.Mapped` out.

=====================================  ==================================================
topic                                  becomes
=====================================  ==================================================
``checkouts/create``, ``/update``      ``cart.updated`` (id: the checkout ``token``; items
                                       in the presentment currency; restore URL:
                                       ``abandoned_checkout_url``), stage checkout
``checkouts/delete``                   ``cart.cleared`` of the checkout its ``cart_token``
                                       (or ``id``) was remembered under
``orders/create``, ``orders/paid``     ``order.placed``; its cart by ``checkout_token``,
                                       then ``cart_token``, else the buyer's latest open
                                       cart within the attribution window
``customers/create``, ``/update``      ``contact.identified``
anything else                          acknowledged, changes nothing
=====================================  ==================================================

The event id is ``shopify:<X-Shopify-Webhook-Id>``, so a redelivery is a duplicate. A
checkout's time is its ``updated_at``; a retry carries the original payload, so an older
one than the cart already has is stale and changes nothing. ``buyer_accepts_marketing`` /
``buyer_accepts_sms_marketing`` grant email / SMS consent (source ``shopify checkout``);
an unticked box withdraws nothing. A customer's ``email_marketing_consent`` and
``sms_marketing_consent`` states ``subscribed`` / ``unsubscribed`` grant / withdraw it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cartback.errors import BadRequest
from cartback.ingest.platforms._common import (
    Fields,
    Mapped,
    Ref,
    build,
    invalid,
    link_key,
    load_json,
    not_after,
    parse_time,
    same_base64_hmac,
    to_minor,
)
from cartback.ingest.schemas import (
    CartCleared,
    CartUpdated,
    CheckoutStarted,
    ContactIdentified,
    OrderPlaced,
)

PLATFORM = "shopify"
TOPICS = (
    "checkouts/create",
    "checkouts/update",
    "checkouts/delete",
    "orders/create",
    "orders/paid",
    "customers/create",
    "customers/update",
)
CHECKOUT_SOURCE = "shopify checkout"
CUSTOMER_SOURCE = "shopify customer"
SIGNATURE = "X-Shopify-Hmac-Sha256"
_CONSENT_STATES = {"subscribed": True, "unsubscribed": False}
# Shopify's updated_at has whole seconds (see _version)
_UNDER_A_SECOND = timedelta(microseconds=999_999)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """``X-Shopify-<name>``, or ``Shopify-<name>`` as the newer Events delivery names it;
    header names in any case."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(f"x-shopify-{name}") or lowered.get(f"shopify-{name}")


def verify(secrets: list[str], body: bytes, headers: Mapping[str, str]) -> bool:
    """``X-Shopify-Hmac-Sha256`` is base64(HMAC-SHA256(secret, raw body)) for one of
    ``secrets`` (the current one, then the one being rotated out)."""
    return same_base64_hmac(secrets, body, header(headers, "hmac-sha256"))


@dataclass(frozen=True)
class Delivery:
    topic: str
    webhook_id: str
    triggered_at: datetime | None


def delivery(headers: Mapping[str, str]) -> Delivery:
    """The delivery's topic, id and trigger time; 400 when Shopify's headers are missing."""
    topic = (header(headers, "topic") or "").strip()
    webhook_id = (header(headers, "webhook-id") or "").strip()
    for name, value in (("Topic", topic), ("Webhook-Id", webhook_id)):
        if not value:
            raise BadRequest(f"The X-Shopify-{name} header is missing", code="missing_header")
        if len(value) > 100 or any(c < " " for c in value):
            raise BadRequest(f"X-Shopify-{name} is not a valid value", code="invalid_header")
    triggered = header(headers, "triggered-at")
    return Delivery(
        topic,
        webhook_id,
        parse_time(triggered.strip(), "X-Shopify-Triggered-At") if triggered else None,
    )


def map_webhook(d: Delivery, body: bytes, *, now: datetime) -> Mapped:
    """The delivery's payload as our events (see the module's table)."""
    if d.topic not in TOPICS:
        return Mapped.ignored(PLATFORM, f"topic {d.topic!r} is not one cartback uses")
    doc = Fields(load_json(body))
    if d.topic in ("checkouts/create", "checkouts/update"):
        return _checkout(doc, d, now)
    if d.topic == "checkouts/delete":
        return _checkout_deleted(doc, d, now)
    if d.topic in ("orders/create", "orders/paid"):
        return _order(doc, d, now)
    return _customer(doc, d, now)


def _version(updated_at: datetime | None, d: Delivery, now: datetime) -> datetime:
    """When this version of the resource was made: its ``updated_at``. That has whole
    seconds, so two changes within one second would look like a retry of the first; the
    trigger time (the same moment, to the microsecond) tells them apart, capped below one
    second so a version never overtakes the next second's."""
    if updated_at is None:
        return not_after(d.triggered_at or now, now)
    moment = updated_at
    if d.triggered_at is not None and moment.microsecond == 0 and d.triggered_at > moment:
        moment += min(d.triggered_at - moment, _UNDER_A_SECOND)
    return not_after(moment, now)


def _checkout(doc: Fields, d: Delivery, now: datetime) -> Mapped:
    token = doc.ident("token")
    if token is None:
        raise invalid("token", "missing: a checkout without its token cannot be a cart")
    if doc.raw("completed_at"):
        return Mapped.ignored(PLATFORM, "the checkout is completed: its order closes the cart")
    currency = doc.currency("presentment_currency") or doc.currency("currency")
    if currency is None:
        raise invalid("presentment_currency", "missing, and so is currency")
    at = _version(doc.when("updated_at"), d, now)
    lines = [_line(line, currency) for line in doc.objects("line_items")]
    restore = doc.text("abandoned_checkout_url")
    event = build(
        CartUpdated,
        {
            "id": f"{PLATFORM}:{d.webhook_id}",
            "type": "cart.updated",
            "occurred_at": at,
            "cart": {
                "id": token,
                "currency": currency,
                "items": [line for line in lines if line is not None],
                "restore_url": restore,
            },
            "contact": _contact(doc, at_checkout=True),
        },
        f"Shopify {d.topic}",
    )
    started = build(
        CheckoutStarted,
        {
            "id": f"{PLATFORM}:{d.webhook_id}:checkout",
            "type": "checkout.started",
            "occurred_at": at,
            "cart": {"id": token},
        },
        f"Shopify {d.topic}",
    )
    return Mapped(PLATFORM, event, links=_names(doc), started=started)


def _names(doc: Fields) -> tuple[str, ...]:
    """The other names of a checkout, under which its cart is found again: the cart token,
    and the numeric id (gone from checkout webhooks since API version 2026-04)."""
    names = []
    if cart_token := doc.ident("cart_token"):
        names.append(link_key(PLATFORM, "cart_token", cart_token))
    if checkout_id := doc.ident("id"):
        names.append(link_key(PLATFORM, "checkout", checkout_id))
    return tuple(names)


def _line(line: Fields, currency: str) -> dict[str, Any] | None:
    quantity = line.count("quantity")
    if not quantity:
        return None  # nothing of it is in the cart
    price = line.amount("price")
    if price is None:
        raise invalid(line.path("price"), "missing")
    sku = (
        line.text("sku") or line.ident("variant_id") or line.ident("product_id") or line.text("key")
    )
    if sku is None:
        raise invalid(line.path("sku"), "missing, and so are variant_id and product_id")
    return {
        "sku": sku,
        "name": line.text("presentment_title", 500) or line.text("title", 500) or sku,
        "unit_price": to_minor(price, currency, line.path("price")),
        "quantity": quantity,
        "variant": line.text("presentment_variant_title", 200) or line.text("variant_title", 200),
    }


def _contact(doc: Fields, *, at_checkout: bool) -> dict[str, Any] | None:
    """The shopper of a checkout or an order (``at_checkout``), or a customer (``doc``)."""
    customer = doc.obj("customer") if at_checkout else doc
    billing, shipping = doc.obj("billing_address"), doc.obj("shipping_address")
    email = doc.text("email") or doc.text("contact_email") or customer.text("email")
    phone = doc.text("sms_marketing_phone") or doc.text("phone") or customer.text("phone")
    external_id = customer.ident("id")
    if not (email or phone or external_id):
        return None
    consent = {
        channel: granted
        for channel, box in (
            ("email", "buyer_accepts_marketing"),
            ("sms", "buyer_accepts_sms_marketing"),
        )
        if (granted := _consent(doc, customer, channel, box if at_checkout else None)) is not None
    }
    return {
        "email": email,
        "phone": phone,
        "first_name": customer.text("first_name", 100)
        or billing.text("first_name", 100)
        or shipping.text("first_name", 100),
        "locale": doc.locale("customer_locale"),
        "external_id": external_id,
        "country": billing.country("country_code")
        or shipping.country("country_code")
        or customer.obj("default_address").country("country_code"),
        "consent": consent or None,
        "consent_source": CHECKOUT_SOURCE if at_checkout else CUSTOMER_SOURCE,
    }


def _consent(doc: Fields, customer: Fields, channel: str, box: str | None) -> bool | None:
    """A ticked box at checkout grants; an unticked one says nothing (the shopper was not
    asked to withdraw anything). The customer's consent state grants or withdraws."""
    if box is not None and doc.flag(box):
        return True
    state = customer.obj(f"{channel}_marketing_consent").text("state")
    return _CONSENT_STATES.get(state.lower()) if state else None


def _checkout_deleted(doc: Fields, d: Delivery, now: datetime) -> Mapped:
    # the payload is partial: id, cart_token and totals; no token, no updated_at
    cart_token, checkout_id = doc.ident("cart_token"), doc.ident("id")
    refs = []
    if cart_token:
        refs += [Ref(link_key(PLATFORM, "cart_token", cart_token), link=True), Ref(cart_token)]
    if checkout_id:
        refs.append(Ref(link_key(PLATFORM, "checkout", checkout_id), link=True))
    name = cart_token or checkout_id
    if name is None:
        raise invalid("cart_token", "missing, and so is id: no checkout is named")
    event = build(
        CartCleared,
        {
            "id": f"{PLATFORM}:{d.webhook_id}",
            "type": "cart.cleared",
            "occurred_at": _version(None, d, now),
            "cart": {"id": name},  # the cart found by refs replaces it
        },
        f"Shopify {d.topic}",
    )
    return Mapped(PLATFORM, event, refs=tuple(refs))


def _order(doc: Fields, d: Delivery, now: datetime) -> Mapped:
    order_id = doc.ident("id")
    if order_id is None:
        raise invalid("id", "missing")
    presentment = doc.obj("total_price_set").obj("presentment_money")
    total, currency = presentment.amount("amount"), presentment.currency("currency_code")
    if total is None or currency is None:
        total, currency = (
            doc.amount("total_price"),
            (doc.currency("presentment_currency") or doc.currency("currency")),
        )
    if total is None or currency is None:
        raise invalid("total_price", "missing, or its currency is")
    checkout_token, cart_token = doc.ident("checkout_token"), doc.ident("cart_token")
    refs = [Ref(checkout_token)] if checkout_token else []
    if cart_token:
        refs += [Ref(link_key(PLATFORM, "cart_token", cart_token), link=True), Ref(cart_token)]
    if checkout_id := doc.ident("checkout_id"):
        refs.append(Ref(link_key(PLATFORM, "checkout", checkout_id), link=True))
    placed = doc.when("processed_at") or doc.when("created_at") or d.triggered_at or now
    event = build(
        OrderPlaced,
        {
            "id": f"{PLATFORM}:{d.webhook_id}",
            "type": "order.placed",
            "occurred_at": not_after(placed, now),
            "order": {
                "id": order_id,
                "cart_id": checkout_token,
                "total": to_minor(total, currency, "total_price"),
                "currency": currency,
                "discount_codes": [
                    code for c in doc.objects("discount_codes") if (code := c.text("code", 100))
                ],
            },
            "contact": _contact(doc, at_checkout=True),
        },
        f"Shopify {d.topic}",
    )
    return Mapped(PLATFORM, event, refs=tuple(refs))


def _customer(doc: Fields, d: Delivery, now: datetime) -> Mapped:
    customer_id = doc.ident("id")
    if customer_id is None:
        raise invalid("id", "missing")
    event = build(
        ContactIdentified,
        {
            "id": f"{PLATFORM}:{d.webhook_id}",
            "type": "contact.identified",
            "occurred_at": _version(doc.when("updated_at"), d, now),
            "contact": _contact(doc, at_checkout=False),
        },
        f"Shopify {d.topic}",
    )
    return Mapped(PLATFORM, event, version_key=link_key(PLATFORM, "customer", customer_id))
