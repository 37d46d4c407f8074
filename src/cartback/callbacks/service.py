"""What verified provider callbacks change: message statuses, consent, suppressions, journeys.

Every function runs in the caller's transaction (it flushes, never commits) and is safe to
run again for the same callback, because providers retry:

- a delivery report moves a message only forwards (:func:`may_move`): ``sent`` after
  ``delivered`` or a second ``failed`` changes nothing, so a fallback is requested once;
- an inbound keyword (SMS) or a Telegram update is recognised by its id in the proof of
  the consent row it wrote (``message_sid``, ``update_id``, ``callback_query_id``);
- a bounce or complaint that finds the address suppressed and its message already moved
  changes nothing more.

Rows a replay could race on are read ``FOR UPDATE`` (PostgreSQL; SQLite has one writer).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.callbacks._consent import first_time, iso, locked_contacts
from cartback.callbacks._delivery import (
    apply_twilio_status,
    apply_whatsapp_status,
    find_message,
    may_move,
    move,
)
from cartback.callbacks._telegram import (
    LINKED_TEXT,
    OPT_OUT_BUTTON,
    OPTED_OUT_TEXT,
    handle_telegram_update,
    telegram_contact_id,
    telegram_link,
)
from cartback.channels.inbound import EmailEvent, EmailEventKind
from cartback.channels.inbound import twilio as tw
from cartback.contacts import service as contacts
from cartback.contacts.models import Contact
from cartback.content import ShortRenderer
from cartback.core.logging import mask_email
from cartback.flows.service import exit_journeys
from cartback.messages.models import Message, MessageStatus
from cartback.stores.schemas import ContactPolicy

__all__ = [
    "LINKED_TEXT",
    "OPTED_OUT_TEXT",
    "OPT_OUT_BUTTON",
    "apply_email_event",
    "apply_twilio_status",
    "apply_whatsapp_status",
    "handle_inbound_sms",
    "handle_telegram_update",
    "may_move",
    "telegram_contact_id",
    "telegram_link",
]

log = logging.getLogger("cartback.callbacks")

# the built-in copy (content/templates/short), in the sender's language
_SHORT = ShortRenderer()


# --- SMS keywords --------------------------------------------------------------------------

# Suppressions a START may lift; an erased contact or a bounced number stays suppressed.
_LIFTED_BY_START = frozenset({"stop_keyword", "unsubscribed"})


def handle_inbound_sms(
    session: Session,
    *,
    store_id: str,
    store_name: str,
    policy: ContactPolicy,
    locale: str,
    inbound: tw.TwilioInbound,
    now: datetime,
) -> str | None:
    """Act on a STOP, START or HELP keyword; the reply to send back, None for no reply.

    STOP revokes SMS consent of every contact with that number and suppresses the number
    (also for a sender we do not know); START grants consent again and lifts a STOP
    suppression; HELP only answers with the store's help text. Replies are in the
    contact's language (else ``locale``, the store's).
    """
    keyword = tw.classify(
        inbound.body, extra_stop_words=policy.stop_words, opt_out_type=inbound.opt_out_type
    )
    if keyword is None:
        return None
    phone = inbound.from_number
    found = locked_contacts(session, store_id, Contact.phone == phone)
    language = next((c.locale for c in found if c.locale), locale)
    if keyword == tw.Keyword.HELP:
        return _SHORT.keyword_reply(
            "help", language, store_name=store_name, help_text=policy.help_text
        )
    if first_time(session, store_id, "twilio_inbound", inbound.message_sid, now):
        _sms_consent(session, store_id, found, keyword, inbound, now)
    log.info(
        "callback.sms_keyword",
        extra={"store_id": store_id, "keyword": keyword.value, "contacts": len(found)},
    )
    if keyword == tw.Keyword.STOP:
        return _SHORT.keyword_reply("stop", language, store_name=store_name)
    return _SHORT.keyword_reply("start", language, store_name=store_name)


def _sms_consent(
    session: Session,
    store_id: str,
    found: list[Contact],
    keyword: tw.Keyword,
    inbound: tw.TwilioInbound,
    now: datetime,
) -> None:
    granted = keyword == tw.Keyword.START
    proof = {"message_sid": inbound.message_sid, "body": inbound.body, "at": iso(now)}
    for contact in found:
        contacts.record_consent(
            session,
            contact=contact,
            channel="sms",
            granted=granted,
            source="sms_keyword",
            occurred_at=now,
            proof=proof,
        )
    phone = inbound.from_number
    if not granted:
        contacts.suppress(
            session, store_id=store_id, channel="sms", address=phone, reason="stop_keyword", now=now
        )
        return
    reason = contacts.suppression_reason(session, store_id=store_id, channel="sms", address=phone)
    if reason in _LIFTED_BY_START:
        contacts.unsuppress(session, store_id=store_id, channel="sms", address=phone)


# --- email events --------------------------------------------------------------------------

# kind -> (suppression reason, message status)
_EMAIL_EFFECTS: dict[EmailEventKind, tuple[str, MessageStatus]] = {
    EmailEventKind.HARD_BOUNCE: ("hard_bounce", MessageStatus.BOUNCED),
    EmailEventKind.COMPLAINT: ("complaint", MessageStatus.COMPLAINED),
    EmailEventKind.UNSUBSCRIBED: ("unsubscribed", MessageStatus.UNSUBSCRIBED),
}
MAX_ADDRESS_CHARS = 254  # RFC 5321's limit for a forward path
# Email goes out over SMTP (an ESP's relay) or an ESP's API, named after the ESP.
_EMAIL_PROVIDERS = ("smtp",)


def apply_email_event(session: Session, *, store_id: str, event: EmailEvent, now: datetime) -> bool:
    """Hard bounce, complaint, unsubscribe: suppress the address, move the message (if
    found by its provider id or Message-ID) and end the contact's active journeys.
    Delivered: move the message. True when something changed."""
    address = contacts.normalize_email(event.address)
    if not address or "@" not in address or len(address) > MAX_ADDRESS_CHARS:
        return False  # nothing we could have sent to
    message = _email_message(session, store_id, event, address)
    if event.kind == EmailEventKind.DELIVERED:
        if message is None:
            return False
        moved = move(session, message, MessageStatus.DELIVERED, now=now, at=event.occurred_at)
        session.flush()
        return moved
    effect = _EMAIL_EFFECTS.get(event.kind)
    if effect is None:
        return False
    reason, status = effect
    fresh = (
        contacts.suppression_reason(session, store_id=store_id, channel="email", address=address)
        is None
    )
    contacts.suppress(
        session, store_id=store_id, channel="email", address=address, reason=reason, now=now
    )
    moved = message is not None and move(
        session, message, status, now=now, code=f"{event.provider}.{reason}", reason=event.detail
    )
    if fresh or moved:
        _end_journeys(session, store_id, address, message, reason, now)
        log.info(
            "callback.email_suppressed",
            extra={"store_id": store_id, "reason": reason, "to": mask_email(address)},
        )
    session.flush()
    return fresh or moved


def _email_message(
    session: Session, store_id: str, event: EmailEvent, address: str
) -> Message | None:
    ids: list[str] = []
    for found in (event.provider_message_id, event.message_id_header):
        if found:
            bare = found.strip().strip("<>")
            ids += [bare, f"<{bare}>"]
    message = find_message(
        session, store_id=store_id, providers=(*_EMAIL_PROVIDERS, event.provider), ids=ids
    )
    # a provider id that happens to match another recipient's message changes nothing
    if message is None or contacts.normalize_email(message.to_address) != address:
        return None
    return message


def _end_journeys(
    session: Session,
    store_id: str,
    address: str,
    message: Message | None,
    reason: str,
    now: datetime,
) -> None:
    ids = {message.contact_id} if message is not None else set()
    ids.update(
        session.execute(
            select(Contact.id).where(Contact.store_id == store_id, Contact.email == address)
        ).scalars()
    )
    for contact_id in sorted(ids):
        exit_journeys(session, store_id=store_id, contact_id=contact_id, reason=reason, now=now)
