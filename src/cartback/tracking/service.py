"""Clicks, opens and unsubscribes that come back from links in messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from cartback.carts import timeline
from cartback.carts.models import Cart
from cartback.contacts import service as contacts
from cartback.contacts.models import Contact
from cartback.flows.service import exit_journeys
from cartback.messages.models import Message, MessageStatus
from cartback.messages.service import with_utm
from cartback.stores.models import Store
from cartback.stores.service import store_settings

# Statuses a click or open may move a message up from (never down from failed etc.).
_ENGAGEMENT_ORDER = [
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.OPENED,
    MessageStatus.CLICKED,
]


def _raise_status(message: Message, status: MessageStatus) -> None:
    if message.status in _ENGAGEMENT_ORDER and _ENGAGEMENT_ORDER.index(
        MessageStatus(message.status)
    ) < _ENGAGEMENT_ORDER.index(status):
        message.status = status


def record_click(session: Session, message: Message, *, now: datetime) -> str:
    """Count the click (the first one moves the status) and return where to send the shopper."""
    if message.clicked_at is None:
        message.clicked_at = now
        _raise_status(message, MessageStatus.CLICKED)
        message.updated_at = now
    timeline.record(
        session,
        store_id=message.store_id,
        cart_id=message.cart_id,
        at=now,
        kind="message.clicked",
        message_id=message.id,
        step=message.step_index,
    )
    cart = session.get(Cart, message.cart_id)
    store = session.get(Store, message.store_id)
    assert cart is not None and store is not None
    _engaged(session, message, now)
    settings = store_settings(store)
    target = cart.restore_url or settings.url
    session.flush()
    return with_utm(
        target,
        source=settings.utm_source,
        medium=message.channel,
        campaign=f"cart_recovery_step_{message.step_index + 1}",
    )


def record_open(session: Session, message: Message, *, now: datetime) -> None:
    if message.opened_at is not None:
        return
    message.opened_at = now
    _raise_status(message, MessageStatus.OPENED)
    message.updated_at = now
    _engaged(session, message, now)
    timeline.record(
        session,
        store_id=message.store_id,
        cart_id=message.cart_id,
        at=now,
        kind="message.opened",
        message_id=message.id,
        step=message.step_index,
    )
    session.flush()


def unsubscribe(session: Session, message: Message, *, now: datetime, source: str) -> None:
    """Stop every message to this address, at once and for good (idempotent)."""
    contact = session.get(Contact, message.contact_id)
    contacts.suppress(
        session,
        store_id=message.store_id,
        channel=message.channel,
        address=message.to_address,
        reason="unsubscribed",
        now=now,
    )
    if message.unsubscribed_at is not None:
        return
    message.unsubscribed_at = now
    message.updated_at = now
    if contact is not None:
        contacts.record_consent(
            session,
            contact=contact,
            channel=message.channel,
            granted=False,
            source=source,
            occurred_at=now,
        )
        exit_journeys(
            session,
            store_id=message.store_id,
            contact_id=contact.id,
            reason="unsubscribed",
            now=now,
        )
    timeline.record(
        session,
        store_id=message.store_id,
        cart_id=message.cart_id,
        at=now,
        kind="message.unsubscribed",
        message_id=message.id,
        source=source,
    )
    session.flush()


def _engaged(session: Session, message: Message, now: datetime) -> None:
    contact = session.get(Contact, message.contact_id)
    if contact is not None:
        contacts.engaged(contact, at=now)
