"""The "here is your cart" email a shopper asks for from a prompt: sent at once (a job due
now), at most once per cart.

As with journey messages (docs/decisions/0004-at-most-once-sends.md), the intent is
committed before the provider call: a run that finds the email ``sending`` marks it
``unknown`` and never sends it again. It is the email the shopper asked for, through the
store's email channel; an address that is suppressed (unsubscribed, bounced, complained,
erased) gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.carts import timeline
from cartback.carts.models import Cart
from cartback.channels import (
    EmailChannel,
    OutgoingEmail,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
)
from cartback.collect.models import CartEmail, CartEmailStatus
from cartback.collect.prompts import SEND_CART_JOB
from cartback.contacts.models import Contact
from cartback.contacts.service import suppression_reason
from cartback.content import (
    EmailContext,
    EmailRenderer,
    RenderError,
    StoreInfo,
    build_items,
    format_money,
)
from cartback.core.clock import Clock
from cartback.messages.service import OUTCOME_UNKNOWN_CODES, with_utm
from cartback.queue import ClaimedJob, Registry, Reschedule
from cartback.queue.backoff import backoff
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import store_settings

TEMPLATE = "your_cart"


class EmailSenders(Protocol):
    """The store's email channel (the runtime's providers)."""

    def email(self, store_id: str, settings: StoreSettings) -> EmailChannel: ...


@dataclass(frozen=True)
class CollectDeps:
    clock: Clock
    renderer: EmailRenderer
    senders: EmailSenders


def register(registry: Registry, deps: CollectDeps) -> None:
    # commits its intent midway, so it runs alone (not batched)
    registry.register(SEND_CART_JOB, lambda s, j: send_cart(s, j, deps))


def send_cart(session: Session, job: ClaimedJob, deps: CollectDeps) -> Reschedule | None:
    now = deps.clock.now()
    row = session.execute(
        select(CartEmail)
        .where(CartEmail.id == job.payload["cart_email_id"], CartEmail.store_id == job.store_id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.status == CartEmailStatus.SENDING:
        _finish(session, row, CartEmailStatus.UNKNOWN, now, "interrupted", "not resent")
        return None
    if row.status != CartEmailStatus.QUEUED:
        return None
    cart = session.get(Cart, row.cart_id)
    contact = session.get(Contact, row.contact_id)
    store = session.get(Store, row.store_id)
    if cart is None or contact is None or store is None:
        return None
    settings = store_settings(store)
    suppressed = suppression_reason(
        session, store_id=store.id, channel="email", address=row.to_address
    )
    if suppressed is not None:
        _finish(session, row, CartEmailStatus.FAILED, now, "suppressed", suppressed)
        return None
    try:
        email = compose(deps.renderer, row, cart, contact, store.name, settings)
    except (RenderError, ValueError) as exc:
        _finish(session, row, CartEmailStatus.FAILED, now, "render_failed", str(exc)[:500])
        return None
    channel = deps.senders.email(store.id, settings)
    row.status = CartEmailStatus.SENDING
    row.updated_at = now
    session.commit()  # the intent is durable before the provider hears of it
    return _deliver(session, job, row, channel, email, now)


def _deliver(
    session: Session,
    job: ClaimedJob,
    row: CartEmail,
    channel: EmailChannel,
    email: OutgoingEmail,
    now: datetime,
) -> Reschedule | None:
    try:
        result = channel.send(email)
    except SendOutcomeUnknown as exc:  # the provider may have it: never resend
        _finish(session, row, CartEmailStatus.UNKNOWN, now, exc.code, exc.reason)
        return None
    except TransientSendError as exc:
        if exc.code in OUTCOME_UNKNOWN_CODES:
            _finish(session, row, CartEmailStatus.UNKNOWN, now, exc.code, exc.reason)
            return None
        if job.attempts >= job.max_attempts:
            _finish(session, row, CartEmailStatus.FAILED, now, exc.code, exc.reason)
            return None
        row.status = CartEmailStatus.QUEUED  # it certainly did not go out
        row.error_code, row.error_reason, row.updated_at = exc.code, exc.reason, now
        delay = exc.retry_after or backoff(job.attempts).total_seconds()
        return Reschedule(now + timedelta(seconds=delay), exc.code, count_attempt=True)
    except PermanentSendError as exc:
        _finish(session, row, CartEmailStatus.FAILED, now, exc.code, exc.reason)
        return None
    row.provider, row.provider_message_id = result.provider, result.provider_message_id
    row.sent_at = now
    _finish(session, row, CartEmailStatus.SENT, now, None, None)
    return None


def _finish(
    session: Session,
    row: CartEmail,
    status: CartEmailStatus,
    now: datetime,
    code: str | None,
    reason: str | None,
) -> None:
    row.status = status
    row.error_code, row.error_reason, row.updated_at = code, reason, now
    data: dict[str, object] = {"cart_email_id": row.id}
    if code:
        data["code"] = code
    timeline.record(
        session,
        store_id=row.store_id,
        cart_id=row.cart_id,
        at=now,
        kind=f"cart_email.{status.value}",
        **data,
    )


def compose(
    renderer: EmailRenderer,
    row: CartEmail,
    cart: Cart,
    contact: Contact,
    store_name: str,
    settings: StoreSettings,
) -> OutgoingEmail:
    """The email: the cart as it is now, its button straight to the cart (no tracked link,
    no unsubscribe: it is the one email the shopper asked for)."""
    locale = contact.locale or settings.locale
    restore_url = with_utm(
        cart.restore_url or settings.url,
        source=settings.utm_source,
        medium="email",
        campaign="snippet_send_cart",
    )
    ctx = EmailContext(
        store=StoreInfo(
            name=store_name,
            url=settings.url,
            support_email=settings.support_email or settings.sender_email,
            address=settings.address,
        ),
        first_name=contact.first_name,
        locale=locale,
        items=tuple(build_items(cart.items, cart.currency, locale)),
        total=format_money(cart.value, cart.currency, locale),
        item_count=cart.item_count,
        restore_url=restore_url,
        unsubscribe_url="",
        open_pixel_url="",
        step_index=0,
    )
    rendered = renderer.render(TEMPLATE, ctx)
    return OutgoingEmail(
        message_id=row.id,
        from_address=settings.sender_email,
        from_name=settings.sender_name or store_name,
        to_address=row.to_address,
        to_name=contact.first_name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        reply_to=settings.support_email,
    )
