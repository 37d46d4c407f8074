"""Delivery reports (Twilio, WhatsApp, email providers) move a message only forwards.

``sent`` after ``delivered``, a second ``failed`` or any report for a message that is
already failed, bounced, complained or unsubscribed changes nothing, so a replayed report
is harmless and a failure asks for the step's next channel once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.channels.inbound import twilio as tw
from cartback.channels.inbound.whatsapp import WhatsAppStatus
from cartback.flows.service import request_fallback
from cartback.messages.models import Message, MessageStatus
from cartback.messages.service import set_status

log = logging.getLogger("cartback.callbacks")

# How far a message has got; a report may only move it up. UNKNOWN sits with SENDING: a
# crash left it unresolved, so any later report is news.
_PROGRESS: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.UNKNOWN: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.OPENED: 4,
    MessageStatus.CLICKED: 5,
}


def may_move(current: str, target: MessageStatus) -> bool:
    """Whether a report of ``target`` moves a message that is ``current`` forwards.

    Failed, bounced, complained and unsubscribed are final. A delivery failure counts only
    before the message was delivered; a bounce up to delivered (receiving servers bounce
    after accepting); a complaint or an unsubscribe at any point of its progress.

    >>> may_move("delivered", MessageStatus.SENT)
    False
    >>> may_move("opened", MessageStatus.COMPLAINED)
    True
    """
    rank = _PROGRESS.get(current)
    if rank is None:
        return False
    if target in (MessageStatus.SENT, MessageStatus.DELIVERED):
        return rank < _PROGRESS[target]
    if target == MessageStatus.FAILED:
        return rank < _PROGRESS[MessageStatus.DELIVERED]
    if target == MessageStatus.BOUNCED:
        return rank <= _PROGRESS[MessageStatus.DELIVERED]
    return target in (MessageStatus.COMPLAINED, MessageStatus.UNSUBSCRIBED)


def move(
    session: Session,
    message: Message,
    target: MessageStatus,
    *,
    now: datetime,
    at: datetime | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> bool:
    if not may_move(message.status, target):
        return False
    set_status(session, message, target, now=now, code=code, reason=reason)
    when = at or now
    if target == MessageStatus.SENT and message.sent_at is None:
        message.sent_at = when
    elif target == MessageStatus.DELIVERED:
        message.delivered_at = when
        if message.sent_at is None:
            message.sent_at = when
    elif target == MessageStatus.UNSUBSCRIBED and message.unsubscribed_at is None:
        message.unsubscribed_at = when
    return True


def find_message(
    session: Session, *, store_id: str, providers: Sequence[str], ids: Sequence[str]
) -> Message | None:
    if not ids:
        return None
    return session.execute(
        select(Message)
        .where(
            Message.provider.in_(providers),
            Message.provider_message_id.in_(ids),
            Message.store_id == store_id,
        )
        .order_by(Message.created_at)
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()


def delivery_report(
    session: Session,
    *,
    store_id: str,
    provider: str,
    provider_message_id: str,
    target: MessageStatus,
    now: datetime,
    at: datetime | None = None,
    code: str | None = None,
    reason: str | None = None,
) -> bool:
    """Move the provider's message; a failure asks the journey for the step's next channel."""
    message = find_message(
        session, store_id=store_id, providers=(provider,), ids=(provider_message_id,)
    )
    if message is None:
        log.info("callback.unknown_message", extra={"provider": provider, "store_id": store_id})
        return False
    if not move(session, message, target, now=now, at=at, code=code, reason=reason):
        return False
    if target == MessageStatus.FAILED:
        request_fallback(
            session,
            store_id=store_id,
            enrollment_id=message.enrollment_id,
            step_index=message.step_index,
            now=now,
        )
    session.flush()
    return True


# Twilio's MessageStatus values that tell us something (queued, accepted, scheduled,
# sending, receiving, canceled ... do not).
_TWILIO_TARGETS: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
}


def apply_twilio_status(
    session: Session, *, store_id: str, report: tw.TwilioStatus, now: datetime
) -> bool:
    """A Twilio status callback; True when it moved a message."""
    target = _TWILIO_TARGETS.get(report.status)
    if target is None:
        return False
    code = reason = None
    if target == MessageStatus.FAILED:
        code = f"twilio.{report.error_code or report.status}"
        reason = tw.failure_reason(report.status, report.error_code)
    return delivery_report(
        session,
        store_id=store_id,
        provider="twilio",
        provider_message_id=report.message_sid,
        target=target,
        now=now,
        code=code,
        reason=reason,
    )


_WHATSAPP_TARGETS: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "failed": MessageStatus.FAILED,
}


def apply_whatsapp_status(
    session: Session, *, store_id: str, report: WhatsAppStatus, now: datetime
) -> bool:
    """One WhatsApp ``statuses[]`` entry; True when it moved a message."""
    target = _WHATSAPP_TARGETS.get(report.status)
    if target is None:
        return False
    code = reason = None
    if target == MessageStatus.FAILED:
        code = f"whatsapp.{report.error_code if report.error_code is not None else 'failed'}"
        reason = report.error_title or "failed without an error from WhatsApp"
    return delivery_report(
        session,
        store_id=store_id,
        provider="whatsapp",
        provider_message_id=report.message_id,
        target=target,
        now=now,
        at=report.timestamp,
        code=code,
        reason=reason,
    )
