"""Sending one message for one journey step, at most once.

The order of writes is the guarantee:
1. intent: the message row goes to ``sending`` and is COMMITTED before the provider call;
2. the provider call;
3. outcome: ``sent`` / ``failed`` / back to ``queued`` for a temporary failure.
A crash between 1 and 3 leaves ``sending`` behind; whoever finds it later marks it
``unknown`` and never sends it again (:func:`resolve_interrupted`).
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from cartback.carts import timeline
from cartback.carts.models import Cart
from cartback.channels import (
    EmailChannel,
    OutgoingEmail,
    PermanentSendError,
    TransientSendError,
)
from cartback.contacts.models import Contact
from cartback.content import EmailContext, EmailRenderer, RenderError, StoreInfo, build_items
from cartback.core.ids import new_id
from cartback.core.logging import mask_email
from cartback.core.metrics import MESSAGES
from cartback.core.signing import Signer
from cartback.messages.models import Message, MessageStatus
from cartback.stores.schemas import StoreSettings

log = logging.getLogger("cartback.messages")

# Failures after the provider may already have accepted the message.
OUTCOME_UNKNOWN_CODES = frozenset({"smtp.data_lost"})

# A temporary failure is retried this many times before the message is given up as failed.
MAX_SEND_ATTEMPTS = 8


class Outcome(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    UNKNOWN = "unknown"
    NOT_RENDERED = "not_rendered"


@dataclass(frozen=True)
class SendOutcome:
    outcome: Outcome
    message: Message
    retry_after: float | None = None


@dataclass(frozen=True)
class Links:
    """Where tracked links point; tokens are signed with the instance secret."""

    base_url: str
    signer: Signer

    def restore(self, message_id: str) -> str:
        return f"{self.base_url}/r/{self.signer.sign('r', message_id)}"

    def unsubscribe(self, message_id: str) -> str:
        return f"{self.base_url}/u/{self.signer.sign('u', message_id)}"

    def open_pixel(self, message_id: str) -> str:
        return f"{self.base_url}/o/{self.signer.sign('o', message_id)}.gif"


@dataclass(frozen=True)
class EmailStep:
    enrollment_id: str
    step_index: int
    template: str
    subject: str | None


def find(session: Session, enrollment_id: str, step_index: int) -> Message | None:
    return session.execute(
        select(Message).where(
            Message.enrollment_id == enrollment_id, Message.step_index == step_index
        )
    ).scalar_one_or_none()


def resolve_interrupted(session: Session, message: Message, *, now: datetime) -> None:
    """A ``sending`` message found by a later run: the provider may or may not have it."""
    set_status(
        session,
        message,
        MessageStatus.UNKNOWN,
        now=now,
        reason="interrupted between intent and outcome; not resent",
    )


def set_status(
    session: Session,
    message: Message,
    status: MessageStatus,
    *,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
) -> None:
    message.status = status
    message.updated_at = now
    MESSAGES.labels(message.channel, status.value).inc()
    if reason is not None:
        message.error_reason = reason
    if code is not None:
        message.error_code = code
    data: dict[str, object] = {
        "message_id": message.id,
        "step": message.step_index,
        "channel": message.channel,
    }
    if reason:
        data["reason"] = reason
    if code:
        data["code"] = code
    timeline.record(
        session,
        store_id=message.store_id,
        cart_id=message.cart_id,
        at=now,
        kind=f"message.{status.value}",
        **data,
    )
    # no flush here: the status and its timeline row go out with the next flush or
    # the commit, together with whatever else the step writes


def send_email_step(
    session: Session,
    *,
    step: EmailStep,
    cart: Cart,
    contact: Contact,
    store_name: str,
    settings: StoreSettings,
    renderer: EmailRenderer,
    channel: EmailChannel,
    links: Links,
    now: datetime,
    existing: Message | None = None,
) -> SendOutcome:
    """Render, record intent (commit), send, record the outcome (not committed).

    ``existing`` is the step's message as the caller read it under the cart lock
    (None: there is none yet; a ``queued`` one is a retry). The message is rendered
    before anything is written, so the intent transaction holds the write lock (and,
    on PostgreSQL, the cart row) only for its own few statements.
    """
    assert contact.email is not None
    message_id = existing.id if existing is not None else new_id()
    try:
        email = _compose(message_id, cart, contact, store_name, settings, renderer, links, step)
    except RenderError as exc:
        message = existing or _insert(
            session,
            message_id,
            step=step,
            cart=cart,
            contact=contact,
            subject=None,
            content_hash=None,
            status=MessageStatus.QUEUED,
            now=now,
        )
        set_status(
            session,
            message,
            MessageStatus.FAILED,
            now=now,
            code="render_failed",
            reason=str(exc)[:500],
        )
        return SendOutcome(Outcome.NOT_RENDERED, message)
    content_hash = hashlib.sha256(email.html.encode()).hexdigest()
    if existing is None:
        message = _insert(
            session,
            message_id,
            step=step,
            cart=cart,
            contact=contact,
            subject=email.subject,
            content_hash=content_hash,
            status=MessageStatus.SENDING,
            now=now,
        )
    else:
        message = existing
        message.subject = email.subject
        message.content_hash = content_hash
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.updated_at = now
    # Counted as a reminder from the moment it may reach the shopper, so an order that
    # lands while the provider is still answering is already a recovery.
    _count_reminder(session, cart, +1)
    session.commit()  # the intent is durable before the provider hears of it
    try:
        result = channel.send(email)
    except TransientSendError as exc:
        if exc.code in OUTCOME_UNKNOWN_CODES:  # the server may have it: never resend
            set_status(
                session, message, MessageStatus.UNKNOWN, now=now, code=exc.code, reason=exc.reason
            )
            return SendOutcome(Outcome.UNKNOWN, message)
        return _temporary_failure(session, message, cart, exc, now)
    except PermanentSendError as exc:
        _count_reminder(session, cart, -1)
        set_status(
            session, message, MessageStatus.FAILED, now=now, code=exc.code, reason=exc.reason
        )
        log.info("message.failed", extra={"message_id": message.id, "code": exc.code})
        return SendOutcome(Outcome.FAILED, message)
    message.provider = result.provider
    message.provider_message_id = result.provider_message_id
    message.sent_at = now
    message.error_code = None
    message.error_reason = None
    set_status(session, message, MessageStatus.SENT, now=now)
    log.info(
        "message.sent",
        extra={"message_id": message.id, "to": mask_email(contact.email), "step": step.step_index},
    )
    return SendOutcome(Outcome.SENT, message)


def _insert_message(dialect: str) -> Any:
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    table = cast(Table, Message.__table__)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["enrollment_id", "step_index", "channel"])
        .returning(table.c.id)
    )


# Built once; the row's values travel as parameters.
_INSERT_MESSAGE = {dialect: _insert_message(dialect) for dialect in ("sqlite", "postgresql")}


def _insert(
    session: Session,
    message_id: str,
    *,
    step: EmailStep,
    cart: Cart,
    contact: Contact,
    subject: str | None,
    content_hash: str | None,
    status: MessageStatus,
    now: datetime,
) -> Message:
    """Insert the step's message, one statement: straight in ``sending`` it is the intent.

    ``ON CONFLICT DO NOTHING`` keeps the one-message-per-step rule even if the
    caller's "there is none" was wrong; then this run gives up (the job retries and
    finds the other run's message).
    """
    assert contact.email is not None
    values: dict[str, Any] = {
        "id": message_id,
        "store_id": cart.store_id,
        "enrollment_id": step.enrollment_id,
        "step_index": step.step_index,
        "cart_id": cart.id,
        "contact_id": contact.id,
        "channel": "email",
        "template": step.template,
        "to_address": contact.email,
        "subject": subject,
        "content_hash": content_hash,
        "status": status,
        "attempts": 1 if status == MessageStatus.SENDING else 0,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    if session.execute(_INSERT_MESSAGE[dialect], values).first() is None:
        raise RuntimeError(f"step {step.step_index} of {step.enrollment_id} has a message already")
    # The row is exactly these values: attach it as loaded instead of reading it back.
    message = Message(
        **values,
        provider=None,
        provider_message_id=None,
        error_code=None,
        error_reason=None,
        sent_at=None,
        opened_at=None,
        clicked_at=None,
        unsubscribed_at=None,
    )
    make_transient_to_detached(message)
    session.add(message)
    return message


_CARTS = cast(Table, Cart.__table__)
# Core, built once: the ORM's bulk-UPDATE path costs more than the statement.
_COUNT_REMINDER = (
    update(_CARTS)
    .where(_CARTS.c.id == bindparam("the_cart"))
    .values(reminders_sent=_CARTS.c.reminders_sent + bindparam("delta"))
)


def _count_reminder(session: Session, cart: Cart, delta: int) -> None:
    session.execute(_COUNT_REMINDER, {"the_cart": cart.id, "delta": delta})
    # keep the loaded cart in step without making it dirty (the UPDATE is relative)
    set_committed_value(cart, "reminders_sent", cart.reminders_sent + delta)


def _temporary_failure(
    session: Session, message: Message, cart: Cart, exc: TransientSendError, now: datetime
) -> SendOutcome:
    _count_reminder(session, cart, -1)  # it certainly did not go out
    if message.attempts >= MAX_SEND_ATTEMPTS:
        set_status(
            session,
            message,
            MessageStatus.FAILED,
            now=now,
            code=exc.code,
            reason=f"gave up after {message.attempts} attempts: {exc.reason}",
        )
        return SendOutcome(Outcome.FAILED, message)
    set_status(
        session,
        message,
        MessageStatus.QUEUED,
        now=now,
        code=exc.code,
        reason=f"temporary failure, will retry: {exc.reason}",
    )
    log.info("message.retry", extra={"message_id": message.id, "code": exc.code})
    return SendOutcome(Outcome.RETRY, message, retry_after=exc.retry_after)


def _compose(
    message_id: str,
    cart: Cart,
    contact: Contact,
    store_name: str,
    settings: StoreSettings,
    renderer: EmailRenderer,
    links: Links,
    step: EmailStep,
) -> OutgoingEmail:
    locale = contact.locale or settings.locale
    unsubscribe = links.unsubscribe(message_id)
    ctx = EmailContext(
        store=StoreInfo(
            name=store_name,
            url=settings.url,
            support_email=settings.support_email or settings.sender_email,
            address=settings.address,
            logo_url=None,
        ),
        first_name=contact.first_name,
        locale=locale,
        items=tuple(build_items(cart.items, cart.currency, locale)),
        total=_total(cart, locale),
        item_count=cart.item_count,
        restore_url=links.restore(message_id),
        unsubscribe_url=unsubscribe,
        open_pixel_url=links.open_pixel(message_id),
        step_index=step.step_index,
    )
    rendered = renderer.render(step.template, ctx, subject_override=step.subject)
    assert contact.email is not None
    return OutgoingEmail(
        message_id=message_id,
        from_address=settings.sender_email,
        from_name=settings.sender_name or store_name,
        to_address=contact.email,
        to_name=contact.first_name,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        headers=(
            ("List-Unsubscribe", f"<{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        reply_to=settings.support_email,
    )


def _total(cart: Cart, locale: str) -> str:
    from cartback.content import format_money

    return format_money(cart.value, cart.currency, locale)


def with_utm(url: str, *, source: str, medium: str, campaign: str) -> str:
    """Add UTM parameters to a store URL, keeping the ones it already has."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("utm_source", source)
    query.setdefault("utm_medium", medium)
    query.setdefault("utm_campaign", campaign)
    return urlunsplit(parts._replace(query=urlencode(query)))
