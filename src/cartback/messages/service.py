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
import logging
from collections.abc import Callable
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
    PermanentSendError,
    SendOutcomeUnknown,
    TokenBucket,
    TransientSendError,
)
from cartback.contacts.models import Contact
from cartback.content import RenderError
from cartback.core.ids import new_id
from cartback.core.logging import mask_address
from cartback.core.metrics import MESSAGES
from cartback.messages.compose import Prepared, StepMessage
from cartback.messages.models import Message, MessageStatus

log = logging.getLogger("cartback.messages")

# Failures after the provider may already have accepted the message.
OUTCOME_UNKNOWN_CODES = frozenset({"smtp.data_lost"})

# A temporary failure is retried this many times before the message is given up as failed.
MAX_SEND_ATTEMPTS = 8


class Outcome(enum.StrEnum):
    THROTTLED = "throttled"  # the provider's rate limit: nothing written, try again soon
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    UNKNOWN = "unknown"
    NOT_RENDERED = "not_rendered"


@dataclass(frozen=True)
class SendOutcome:
    outcome: Outcome
    message: Message | None  # None only when THROTTLED before anything was written
    retry_after: float | None = None


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


def send_step(
    session: Session,
    *,
    step: StepMessage,
    cart: Cart,
    contact: Contact,
    prepare: Callable[[str], Prepared],
    limiter: TokenBucket | None = None,
    now: datetime,
    existing: Message | None = None,
) -> SendOutcome:
    """Prepare, record intent (commit), send, record the outcome (not committed).

    ``existing`` is the step's message on this channel as the caller read it under the
    cart lock (None: there is none yet; a ``queued`` one is a retry). ``prepare`` renders
    and addresses the message for a message id; it runs before anything is written, so
    the intent transaction holds the write lock (and, on PostgreSQL, the cart row) only
    for its own few statements. A send the provider's rate limit holds back writes
    nothing and comes back as ``THROTTLED``.
    """
    message_id = existing.id if existing is not None else new_id()
    try:
        prepared = prepare(message_id)
    except RenderError as exc:
        message = existing or _insert(
            session,
            message_id,
            step=step,
            cart=cart,
            contact=contact,
            to_address="",
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
    if limiter is not None and prepared.rate_key and not limiter.try_acquire(prepared.rate_key):
        return SendOutcome(Outcome.THROTTLED, existing, retry_after=float(1 / limiter.rate))
    if existing is None:
        message = _insert(
            session,
            message_id,
            step=step,
            cart=cart,
            contact=contact,
            to_address=prepared.to_address,
            subject=prepared.subject,
            content_hash=prepared.content_hash,
            status=MessageStatus.SENDING,
            now=now,
        )
    else:
        message = existing
        message.to_address = prepared.to_address
        message.subject = prepared.subject
        message.content_hash = prepared.content_hash
        message.status = MessageStatus.SENDING
        message.attempts += 1
        message.updated_at = now
    message.segments = prepared.segments
    message.cost_micros = prepared.cost_micros
    # Counted as a reminder from the moment it may reach the shopper, so an order that
    # lands while the provider is still answering is already a recovery.
    _count_reminder(session, cart, +1)
    session.commit()  # the intent is durable before the provider hears of it
    try:
        result = prepared.deliver()
    except SendOutcomeUnknown as exc:  # the provider may have it: never resend
        return _unknown(session, message, exc, now)
    except TransientSendError as exc:
        if exc.code in OUTCOME_UNKNOWN_CODES:
            return _unknown(session, message, exc, now)
        return _temporary_failure(session, message, cart, exc, now)
    except PermanentSendError as exc:
        _count_reminder(session, cart, -1)
        message.cost_micros = None
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
        extra={
            "message_id": message.id,
            "channel": step.channel,
            "to": mask_address(prepared.to_address),
            "step": step.step_index,
        },
    )
    return SendOutcome(Outcome.SENT, message)


def _unknown(
    session: Session, message: Message, exc: TransientSendError, now: datetime
) -> SendOutcome:
    set_status(session, message, MessageStatus.UNKNOWN, now=now, code=exc.code, reason=exc.reason)
    return SendOutcome(Outcome.UNKNOWN, message)


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
    step: StepMessage,
    cart: Cart,
    contact: Contact,
    to_address: str,
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
    values: dict[str, Any] = {
        "id": message_id,
        "store_id": cart.store_id,
        "enrollment_id": step.enrollment_id,
        "step_index": step.step_index,
        "cart_id": cart.id,
        "contact_id": contact.id,
        "channel": step.channel,
        "template": step.template,
        "to_address": to_address,
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
        delivered_at=None,
        segments=None,
        cost_micros=None,
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


def with_utm(url: str, *, source: str, medium: str, campaign: str) -> str:
    """Add UTM parameters to a store URL, keeping the ones it already has."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.setdefault("utm_source", source)
    query.setdefault("utm_medium", medium)
    query.setdefault("utm_campaign", campaign)
    return urlunsplit(parts._replace(query=urlencode(query)))
