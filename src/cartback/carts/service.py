"""The cart state machine: snapshots, abandonment scheduling, orders.

active --no activity for the store's threshold--> abandoned
abandoned --newer activity--> active (the running journey ends)
active|abandoned --order--> purchased, or recovered when a reminder went out first
cleared --an order naming it, within the attribution window--> purchased or recovered
active|abandoned --emptied--> cleared
active|abandoned --no activity for cart_expiry--> expired
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cartback.carts import timeline
from cartback.carts.models import Cart, CartStage, CartStatus, Order
from cartback.contacts.models import Contact
from cartback.core.db import upsert_ignore
from cartback.core.ids import new_id
from cartback.queue import cancel, enqueue

ABANDON_JOB = "cart.abandon"
EXPIRE_JOB = "cart.expire"
OPEN_STATUSES = (CartStatus.ACTIVE, CartStatus.ABANDONED)


def abandon_key(cart_id: str) -> str:
    return f"abandon:{cart_id}"


@dataclass(frozen=True)
class Snapshot:
    external_id: str
    currency: str
    items: list[dict[str, Any]]
    restore_url: str | None
    occurred_at: datetime
    stage: str | None = None


class Change(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    STALE = "stale"  # an older snapshot than the one we have: ignored
    CLOSED = "closed"  # the cart was already bought: ignored
    REOPENED = "reopened"  # an abandoned cart changed: its journey must end
    CLEARED = "cleared"


@dataclass
class SnapshotResult:
    cart: Cart
    change: Change
    notes: list[str] = field(default_factory=list)


def get_by_external_id(session: Session, store_id: str, external_id: str) -> Cart | None:
    return session.execute(
        select(Cart).where(Cart.store_id == store_id, Cart.external_id == external_id)
    ).scalar_one_or_none()


def get_or_create(
    session: Session,
    *,
    store_id: str,
    external_id: str,
    currency: str,
    at: datetime,
    now: datetime,
) -> tuple[Cart, bool]:
    """The store's cart by its id, created on first sight with activity at ``at``."""
    cart = get_by_external_id(session, store_id, external_id)
    if cart is not None:
        return cart, False
    inserted = upsert_ignore(
        session,
        Cart,
        {
            "id": new_id(),
            "store_id": store_id,
            "external_id": external_id,
            "currency": currency,
            "items": [],
            "value": 0,
            "item_count": 0,
            "stage": CartStage.CART,
            "status": CartStatus.ACTIVE,
            "last_activity_at": min(at, now),  # a clock ahead of ours is not the future
            "reminders_sent": 0,
            "created_at": now,
            "updated_at": now,
        },
        conflict=("store_id", "external_id"),
    )
    cart = get_by_external_id(session, store_id, external_id)
    assert cart is not None
    return cart, inserted


def apply_snapshot(
    session: Session, *, store_id: str, snap: Snapshot, abandon_after: timedelta, now: datetime
) -> SnapshotResult:
    """Apply a full cart snapshot unless a newer one was applied already."""
    cart, created = get_or_create(
        session,
        store_id=store_id,
        external_id=snap.external_id,
        currency=snap.currency,
        at=snap.occurred_at,
        now=now,
    )
    if cart.status in (CartStatus.PURCHASED, CartStatus.RECOVERED):
        return SnapshotResult(cart, Change.CLOSED)
    if cart.snapshot_at is not None and snap.occurred_at <= cart.snapshot_at:
        return SnapshotResult(cart, Change.STALE)
    was_abandoned = cart.status == CartStatus.ABANDONED
    cart.items = snap.items
    cart.currency = snap.currency
    cart.value = sum(int(i["unit_price"]) * int(i["quantity"]) for i in snap.items)
    cart.item_count = sum(int(i["quantity"]) for i in snap.items)
    if snap.restore_url:
        cart.restore_url = snap.restore_url
    if snap.stage:
        cart.stage = snap.stage
    cart.snapshot_at = snap.occurred_at
    cart.updated_at = now
    if not snap.items:
        close(session, cart, status=CartStatus.CLEARED, at=snap.occurred_at)
        return SnapshotResult(cart, Change.CLEARED)
    touch(session, cart, at=snap.occurred_at, abandon_after=abandon_after, now=now)
    if was_abandoned:
        return SnapshotResult(cart, Change.REOPENED)
    return SnapshotResult(cart, Change.CREATED if created else Change.UPDATED)


def touch(
    session: Session, cart: Cart, *, at: datetime, abandon_after: timedelta, now: datetime
) -> bool:
    """Record shopper activity at ``at``; (re)arm the abandonment check. True if it reopened."""
    reopened = cart.status in (CartStatus.ABANDONED, CartStatus.EXPIRED, CartStatus.CLEARED)
    if at > cart.last_activity_at:
        cart.last_activity_at = min(at, now)
    cart.status = CartStatus.ACTIVE
    # abandoned_at stays: the cart was abandoned, and a shopper who comes back from a
    # reminder and then buys is the recovery the stats must count
    cart.closed_at = None
    cart.abandon_at = cart.last_activity_at + abandon_after
    session.flush()
    enqueue(
        session,
        store_id=cart.store_id,
        kind=ABANDON_JOB,
        key=abandon_key(cart.id),
        run_at=max(cart.abandon_at, now),
        payload={"cart_id": cart.id},
        replace=True,
        now=now,
    )
    return reopened


def close(session: Session, cart: Cart, *, status: CartStatus, at: datetime) -> None:
    cart.status = status
    cart.closed_at = at
    cart.abandon_at = None
    session.flush()
    cancel(session, store_id=cart.store_id, key=abandon_key(cart.id))


def mark_abandoned(session: Session, cart: Cart, *, at: datetime, now: datetime) -> None:
    """The cart was abandoned at ``at`` (its last activity + the threshold); we noticed
    it ``now``, which is where it goes on the timeline."""
    cart.status = CartStatus.ABANDONED
    cart.abandoned_at = at
    session.flush()
    timeline.record(
        session,
        store_id=cart.store_id,
        cart_id=cart.id,
        at=now,
        kind="cart.abandoned",
        abandoned_at=at.isoformat(),
        value=cart.value,
        currency=cart.currency,
        items=cart.item_count,
    )


def attach_contact(session: Session, cart: Cart, contact: Contact) -> None:
    if cart.contact_id != contact.id:
        cart.contact_id = contact.id
        session.flush()


def latest_open_cart_of_contact(
    session: Session, *, store_id: str, contact_id: str, since: datetime
) -> Cart | None:
    return (
        session.execute(
            select(Cart)
            .where(
                Cart.store_id == store_id,
                Cart.contact_id == contact_id,
                Cart.status.in_(OPEN_STATUSES),
                Cart.last_activity_at >= since,
            )
            .order_by(Cart.last_activity_at.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


@dataclass(frozen=True)
class OrderIn:
    external_id: str
    total: int
    currency: str
    placed_at: datetime
    discount_codes: list[str]
    cart_external_id: str | None
    contact: Contact | None


@dataclass(frozen=True)
class OrderResult:
    order: Order | None  # None: this order was recorded before (counted once)
    cart: Cart | None


def record_order(
    session: Session, *, store_id: str, data: OrderIn, attribution: timedelta, now: datetime
) -> OrderResult:
    """Store an order once; close the cart it came from (by cart id, else the contact's
    latest open cart within the attribution window) as purchased or recovered."""
    order_id = new_id()
    inserted = upsert_ignore(
        session,
        Order,
        {
            "id": order_id,
            "store_id": store_id,
            "external_id": data.external_id,
            "total": data.total,
            "currency": data.currency,
            "discount_codes": data.discount_codes,
            "contact_id": data.contact.id if data.contact else None,
            "recovered": False,
            "placed_at": data.placed_at,
            "created_at": now,
        },
        conflict=("store_id", "external_id"),
    )
    if not inserted:
        return OrderResult(None, None)
    order = session.get(Order, order_id)
    assert order is not None
    cart = _cart_for_order(session, store_id, data, attribution)
    if data.contact is not None:
        session.execute(
            update(Contact)
            .where(Contact.id == data.contact.id)
            .values(orders_count=Contact.orders_count + 1)
        )
    if cart is not None and _still_buyable(cart, data, attribution):
        order.cart_id = cart.id
        order.recovered = cart.reminders_sent > 0
        close(
            session,
            cart,
            status=CartStatus.RECOVERED if order.recovered else CartStatus.PURCHASED,
            at=data.placed_at,
        )
    elif cart is not None:
        order.cart_id = cart.id
    session.flush()
    return OrderResult(order, cart)


def _still_buyable(cart: Cart, data: OrderIn, attribution: timedelta) -> bool:
    """An open cart; or one the order names that was emptied within the attribution window
    before it. Platforms empty or delete a cart as its order is placed, and their webhooks
    come in any order: Shopify's ``checkouts/delete`` may arrive before ``orders/create``."""
    if cart.status in OPEN_STATUSES:
        return True
    return (
        cart.status == CartStatus.CLEARED
        and cart.external_id == data.cart_external_id
        and cart.closed_at is not None
        and cart.closed_at >= data.placed_at - attribution
    )


def _cart_for_order(
    session: Session, store_id: str, data: OrderIn, attribution: timedelta
) -> Cart | None:
    if data.cart_external_id:
        cart = get_by_external_id(session, store_id, data.cart_external_id)
        if cart is not None:
            return cart
    if data.contact is not None:
        return latest_open_cart_of_contact(
            session,
            store_id=store_id,
            contact_id=data.contact.id,
            since=data.placed_at - attribution,
        )
    return None


def expire_idle(session: Session, *, before: datetime, now: datetime, limit: int) -> list[Cart]:
    """Expire up to ``limit`` open carts idle since ``before``; returns them."""
    ids = list(
        session.execute(
            select(Cart.id)
            .where(Cart.status.in_(OPEN_STATUSES), Cart.last_activity_at < before)
            .order_by(Cart.last_activity_at)
            .limit(limit)
        ).scalars()
    )
    expired = list(session.execute(select(Cart).where(Cart.id.in_(ids))).scalars())
    for cart in expired:
        close(session, cart, status=CartStatus.EXPIRED, at=now)
        timeline.record(
            session, store_id=cart.store_id, cart_id=cart.id, at=now, kind="cart.expired"
        )
    return expired


def fulfil_order(session: Session, *, store_id: str, external_id: str, at: datetime) -> bool:
    """Mark an order fulfilled (shipped); False when the store has no such order."""
    order = session.execute(
        select(Order).where(Order.store_id == store_id, Order.external_id == external_id)
    ).scalar_one_or_none()
    if order is None:
        return False
    if order.fulfilled_at is None:
        order.fulfilled_at = at
    return True
