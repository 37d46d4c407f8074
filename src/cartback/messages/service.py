"""Sending one message for one journey step, at most once.

The order of writes is the guarantee:
1. intent (:func:`begin_send`): the message row goes to ``sending`` and is COMMITTED
   before the provider call (by the caller: the worker, for a job's ``Deliver``);
2. the provider call, with no transaction open;
3. outcome (:func:`finish_send`): ``sent`` / ``failed`` / back to ``queued`` for a
   temporary failure.
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

from sqlalchemy import Table, Update, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cartback.carts import timeline
from cartback.carts.models import Cart, TimelineEntry
from cartback.channels import (
    PermanentSendError,
    SendOutcomeUnknown,
    SendResult,
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
from cartback.queue import Delivered

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
    record_status(
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


# --- the send path's writes: Core statements built once, no unit of work -------------
#
# A journey step writes a handful of rows; through the ORM each costs a flush (change
# tracking, the unit of work, an INSERT/UPDATE built per flush), which cost more than
# the statements themselves (bench/send.py profile). Here each is one prebuilt
# statement run at once, in the caller's transaction, and the loaded object is kept in
# step with ``set_committed_value`` (so it never becomes dirty and is not written twice).

_MESSAGES = cast(Table, Message.__table__)
_TIMELINE = insert(cast(Table, TimelineEntry.__table__))
_updates: dict[tuple[str, ...], Update] = {}


def note(
    session: Session, *, store_id: str, cart_id: str, at: datetime, kind: str, **data: Any
) -> None:
    """A timeline entry written at once (one INSERT; :func:`cartback.carts.timeline.record`
    without the unit of work). Entries keep their write order: ids follow the INSERTs."""
    session.connection().execute(
        _TIMELINE, {"store_id": store_id, "cart_id": cart_id, "at": at, "kind": kind, "data": data}
    )


def _update_statement(columns: tuple[str, ...]) -> Update:
    stmt = _updates.get(columns)
    if stmt is None:
        stmt = (
            update(_MESSAGES)
            .where(_MESSAGES.c.id == bindparam("the_message"))
            .values({name: bindparam(f"new_{name}") for name in columns})
        )
        _updates[columns] = stmt  # a handful of shapes; a racing build is harmless
    return stmt


def _write(session: Session, message: Message, **values: Any) -> None:
    """UPDATE the message's ``values`` at once, and keep the loaded object in step."""
    columns = tuple(sorted(values))
    params = {f"new_{name}": values[name] for name in columns}
    params["the_message"] = message.id
    session.connection().execute(_update_statement(columns), params)
    for name in columns:
        set_committed_value(message, name, values[name])


def record_status(
    session: Session,
    message: Message,
    status: MessageStatus,
    *,
    now: datetime,
    reason: str | None = None,
    code: str | None = None,
    **more: Any,
) -> None:
    """:func:`set_status` for the send path: the UPDATE (with ``more`` columns) and the
    timeline row are written at once, as Core statements."""
    values: dict[str, Any] = {"status": status.value, "updated_at": now, **more}
    if reason is not None:
        values["error_reason"] = reason
    if code is not None:
        values["error_code"] = code
    _write(session, message, **values)
    MESSAGES.labels(message.channel, status.value).inc()
    data: dict[str, object] = {
        "message_id": message.id,
        "step": message.step_index,
        "channel": message.channel,
    }
    if reason:
        data["reason"] = reason
    if code:
        data["code"] = code
    note(
        session,
        store_id=message.store_id,
        cart_id=message.cart_id,
        at=now,
        kind=f"message.{status.value}",
        **data,
    )


@dataclass(frozen=True)
class Intent:
    """A send recorded as ``sending`` (the caller commits it), ready to deliver."""

    message: Message
    prepared: Prepared
    cart: Cart
    channel: str
    step_index: int
    now: datetime


def begin_send(
    session: Session,
    *,
    step: StepMessage,
    cart: Cart,
    contact: Contact,
    prepare: Callable[[str], Prepared],
    limiter: TokenBucket | None = None,
    now: datetime,
    existing: Message | None = None,
) -> Intent | SendOutcome:
    """Prepare the message and record the intent to send it (not committed).

    The caller commits the intent, delivers with no transaction open
    (``intent.prepared.deliver``) and then records what the provider said with
    :func:`finish_send` (the worker does this for a handler that returns a
    ``cartback.queue.Deliver``). Comes back as a :class:`SendOutcome` instead when
    there is nothing to deliver: the content could not be rendered (the message is
    recorded ``failed``), or the provider's rate limit holds it back (nothing written:
    ``THROTTLED``).

    ``existing`` is the step's message on this channel as the caller read it under the
    cart lock (None: there is none yet; a ``queued`` one is a retry). ``prepare`` renders
    and addresses the message for a message id; it runs before anything is written, so
    the intent transaction holds the write lock (and, on PostgreSQL, the cart row) only
    for its own few statements.
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
        record_status(
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
            segments=prepared.segments,
            cost_micros=prepared.cost_micros,
        )
    else:
        message = existing
        _write(
            session,
            message,
            to_address=prepared.to_address,
            subject=prepared.subject,
            content_hash=prepared.content_hash,
            status=MessageStatus.SENDING.value,
            attempts=message.attempts + 1,
            updated_at=now,
            segments=prepared.segments,
            cost_micros=prepared.cost_micros,
        )
    # Counted as a reminder from the moment it may reach the shopper, so an order that
    # lands while the provider is still answering is already a recovery.
    _count_reminder(session, cart, +1)
    return Intent(message, prepared, cart, step.channel, step.step_index, now)


def finish_send(session: Session, intent: Intent, delivered: Delivered) -> SendOutcome:
    """Record what the provider said about a committed intent (not committed).

    ``delivered`` is what ``intent.prepared.deliver()`` returned or raised; an error
    that is none of the channel errors is raised again (the job retries, and its next
    run finds the message still ``sending``: never resent).
    """
    message, now = intent.message, intent.now
    exc = delivered.error
    if exc is None:
        result: SendResult = delivered.value
        record_status(
            session,
            message,
            MessageStatus.SENT,
            now=now,
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            sent_at=now,
            error_code=None,
            error_reason=None,
        )
        log.info(
            "message.sent",
            extra={
                "message_id": message.id,
                "channel": intent.channel,
                "to": mask_address(intent.prepared.to_address),
                "step": intent.step_index,
            },
        )
        return SendOutcome(Outcome.SENT, message)
    if isinstance(exc, SendOutcomeUnknown):  # the provider may have it: never resend
        return _unknown(session, message, exc, now)
    if isinstance(exc, TransientSendError):
        if exc.code in OUTCOME_UNKNOWN_CODES:
            return _unknown(session, message, exc, now)
        return _temporary_failure(session, message, intent.cart, exc, now)
    if isinstance(exc, PermanentSendError):
        _count_reminder(session, intent.cart, -1)
        record_status(
            session,
            message,
            MessageStatus.FAILED,
            now=now,
            code=exc.code,
            reason=exc.reason,
            cost_micros=None,
        )
        log.info("message.failed", extra={"message_id": message.id, "code": exc.code})
        return SendOutcome(Outcome.FAILED, message)
    raise exc


def _unknown(
    session: Session, message: Message, exc: TransientSendError, now: datetime
) -> SendOutcome:
    record_status(
        session, message, MessageStatus.UNKNOWN, now=now, code=exc.code, reason=exc.reason
    )
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
    segments: int | None = None,
    cost_micros: int | None = None,
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
        "status": status.value,
        "attempts": 1 if status == MessageStatus.SENDING else 0,
        "segments": segments,
        "cost_micros": cost_micros,
        "created_at": now,
        "updated_at": now,
    }
    connection = session.connection()
    if connection.execute(_INSERT_MESSAGE[connection.dialect.name], values).first() is None:
        raise RuntimeError(f"step {step.step_index} of {step.enrollment_id} has a message already")
    # The row is exactly these values: an object built from them, never read back. It
    # stays outside the session: later writes are Core statements (``_write``).
    return Message(
        **values,
        provider=None,
        provider_message_id=None,
        error_code=None,
        error_reason=None,
        sent_at=None,
        delivered_at=None,
        opened_at=None,
        clicked_at=None,
        unsubscribed_at=None,
    )


_CARTS = cast(Table, Cart.__table__)
# Core, built once: the ORM's bulk-UPDATE path costs more than the statement.
_COUNT_REMINDER = (
    update(_CARTS)
    .where(_CARTS.c.id == bindparam("the_cart"))
    .values(reminders_sent=_CARTS.c.reminders_sent + bindparam("delta"))
)


def _count_reminder(session: Session, cart: Cart, delta: int) -> None:
    session.connection().execute(_COUNT_REMINDER, {"the_cart": cart.id, "delta": delta})
    # keep the loaded cart in step without making it dirty (the UPDATE is relative)
    set_committed_value(cart, "reminders_sent", cart.reminders_sent + delta)


def _temporary_failure(
    session: Session, message: Message, cart: Cart, exc: TransientSendError, now: datetime
) -> SendOutcome:
    _count_reminder(session, cart, -1)  # it certainly did not go out
    if message.attempts >= MAX_SEND_ATTEMPTS:
        record_status(
            session,
            message,
            MessageStatus.FAILED,
            now=now,
            code=exc.code,
            reason=f"gave up after {message.attempts} attempts: {exc.reason}",
        )
        return SendOutcome(Outcome.FAILED, message)
    record_status(
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
