"""What a submitted prompt offers: the cart by email (at most once per cart), a price
watch, or a coupon (noted for now; coupons come in a later issue)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cartback.carts import timeline
from cartback.carts.models import Cart
from cartback.collect.models import CartEmail, CartEmailStatus, PriceWatch
from cartback.core.db import upsert_ignore
from cartback.core.ids import new_id
from cartback.queue import enqueue

log = logging.getLogger("cartback.collect")

SEND_CART_JOB = "collect.send_cart"


def note(session: Session, cart: Cart, kind: str, now: datetime, **data: object) -> None:
    timeline.record(session, store_id=cart.store_id, cart_id=cart.id, at=now, kind=kind, **data)


def request_cart_email(
    session: Session, *, cart: Cart | None, contact_id: str, email: str | None, now: datetime
) -> None:
    """The visitor's open cart, to the captured email, at once (a job due now) and at most
    once per cart (the unique key of ``cart_emails``)."""
    if cart is None or not cart.items:
        log.info("collect.send_cart_without_cart")
        return
    if email is None:  # the cart goes by email only; the phone is kept all the same
        note(session, cart, "cart_email.not_sent", now, reason="no_email")
        return
    email_id = new_id()
    requested = upsert_ignore(
        session,
        CartEmail,
        {
            "id": email_id,
            "store_id": cart.store_id,
            "cart_id": cart.id,
            "contact_id": contact_id,
            "to_address": email.strip().lower(),
            "status": CartEmailStatus.QUEUED,
            "requested_at": now,
            "updated_at": now,
        },
        conflict=("store_id", "cart_id"),
    )
    if not requested:
        note(session, cart, "cart_email.not_sent", now, reason="sent_before")
        return
    note(session, cart, "cart_email.requested", now, cart_email_id=email_id)
    enqueue(
        session,
        store_id=cart.store_id,
        kind=SEND_CART_JOB,
        key=f"cart_email:{email_id}",
        run_at=now,
        payload={"cart_email_id": email_id},
        max_attempts=8,
        now=now,
    )


def watch_prices(
    session: Session,
    *,
    store_id: str,
    cart: Cart | None,
    product: dict[str, Any] | None,
    contact_id: str,
    channel: str,
    days: int,
    now: datetime,
) -> None:
    """Keep the prices the shopper saw (the cart's, else the product last viewed) for
    ``days``: what a later price-drop alert compares against."""
    if cart is not None and cart.items:
        currency = cart.currency
        items = [
            {"sku": i.get("sku"), "name": i.get("name"), "unit_price": i.get("unit_price")}
            for i in cart.items
        ]
    elif product is not None:
        currency = str(product["currency"])
        items = [{"sku": product["sku"], "name": product["name"], "unit_price": product["price"]}]
    else:
        log.info("collect.price_watch_without_items", extra={"store_id": store_id})
        return
    until = now + timedelta(days=days)
    watch = PriceWatch(
        id=new_id(),
        store_id=store_id,
        contact_id=contact_id,
        cart_id=cart.id if cart is not None and cart.items else None,
        channel=channel,
        currency=currency,
        items=items,
        created_at=now,
        until=until,
    )
    session.add(watch)
    if cart is not None:
        note(
            session,
            cart,
            "price_watch.started",
            now,
            price_watch_id=watch.id,
            until=until.isoformat(),
        )
