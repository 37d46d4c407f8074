"""The Telegram bot: deep links that link a chat to a contact, and the opt-out button."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cartback.callbacks._consent import first_time, iso, locked_contacts
from cartback.channels.inbound import telegram as tg
from cartback.contacts import service as contacts
from cartback.contacts.models import Contact
from cartback.core.signing import Signer

log = logging.getLogger("cartback.callbacks")

LINKED_TEXT = "You'll get your cart reminders here."
OPTED_OUT_TEXT = "You won't get cart reminders here any more."
NOTHING_TO_STOP_TEXT = "This chat gets no cart reminders."
OPT_OUT_BUTTON = "optout:cart"
TELEGRAM_PURPOSE = "telegram"


def telegram_link(signer: Signer, bot_username: str, contact_id: str) -> str:
    """The deep link that links a contact's Telegram chat when they press Start.

    The start parameter is the contact id and its signature, joined without the ``.``
    that Telegram does not allow (at most 64 characters of ``[A-Za-z0-9_-]``)::

        https://t.me/acme_bot?start=3f2a...c9<24 signature characters>
    """
    value, _, signature = signer.sign(TELEGRAM_PURPOSE, contact_id).partition(".")
    token = value + signature
    if len(token) > tg.MAX_PAYLOAD or not token.replace("-", "").replace("_", "").isalnum():
        raise ValueError("this contact id does not fit a Telegram start parameter")
    return f"https://t.me/{bot_username}?start={token}"


def telegram_contact_id(signer: Signer, token: str) -> str | None:
    """The contact id in a start parameter; None when it was not made by us (tampered)."""
    size = len(signer.sign(TELEGRAM_PURPOSE, "x")) - len("x.")
    if len(token) <= size:
        return None
    return signer.unsign(TELEGRAM_PURPOSE, f"{token[:-size]}.{token[-size:]}")


def handle_telegram_update(
    session: Session,
    *,
    store_id: str,
    signer: Signer,
    update: tg.StartCommand | tg.ButtonPress | None,
    now: datetime,
) -> dict[str, Any]:
    """Link a chat (``/start <token>``) or revoke Telegram consent (the ``optout:cart``
    button); the webhook answer: a Bot API call, or ``{}`` for nothing to say."""
    if isinstance(update, tg.StartCommand):
        return _telegram_start(session, store_id, signer, update, now)
    if isinstance(update, tg.ButtonPress):
        return _telegram_button(session, store_id, update, now)
    return {}


def _telegram_start(
    session: Session, store_id: str, signer: Signer, start: tg.StartCommand, now: datetime
) -> dict[str, Any]:
    contact_id = telegram_contact_id(signer, start.payload) if start.payload else None
    if contact_id is None:
        return {}
    found = locked_contacts(session, store_id, Contact.id == contact_id)
    if not found:
        return {}
    contact = found[0]
    if first_time(session, store_id, "telegram_update", start.update_id, now):
        contact.telegram_chat_id = str(start.chat_id)
        contact.updated_at = now
        contacts.record_consent(
            session,
            contact=contact,
            channel="telegram",
            granted=True,
            source="telegram_start",
            occurred_at=now,
            proof={
                "chat_id": start.chat_id,
                "username": start.username,
                "at": iso(start.sent_at or now),
                "update_id": start.update_id,
            },
        )
        log.info("callback.telegram_linked", extra={"store_id": store_id})
    return tg.send_message(start.chat_id, LINKED_TEXT)


def _telegram_button(
    session: Session, store_id: str, press: tg.ButtonPress, now: datetime
) -> dict[str, Any]:
    if press.data != OPT_OUT_BUTTON:
        return tg.answer_callback(press.query_id)
    chat_id = press.chat_id if press.chat_id is not None else press.user_id
    found = locked_contacts(session, store_id, Contact.telegram_chat_id == str(chat_id))
    if not found:
        return tg.answer_callback(press.query_id, NOTHING_TO_STOP_TEXT)
    proof = {
        "chat_id": chat_id,
        "username": press.username,
        "at": iso(now),
        "callback_query_id": press.query_id,
    }
    if not first_time(session, store_id, "telegram_button", press.query_id, now):
        return tg.answer_callback(press.query_id, OPTED_OUT_TEXT)
    for contact in found:
        contacts.record_consent(
            session,
            contact=contact,
            channel="telegram",
            granted=False,
            source="telegram_button",
            occurred_at=now,
            proof=proof,
        )
    return tg.answer_callback(press.query_id, OPTED_OUT_TEXT)
