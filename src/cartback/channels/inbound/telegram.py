"""Telegram bot webhook in (integrations.md section 4, Bot API).

``setWebhook(url, secret_token)`` makes Telegram send ``X-Telegram-Bot-Api-Secret-Token``
with every update (:func:`verify_secret_token`). Two updates matter here
(:func:`parse_update`):

- ``/start <payload>`` in a private chat: the shopper opened the deep link
  ``https://t.me/<bot>?start=<payload>`` and pressed Start (:class:`StartCommand`);
- a ``callback_query`` from an inline button, e.g. ``optout:cart`` (:class:`ButtonPress`).

Anything else (other messages, group chats, edits, ...) parses to None. A webhook answer
may itself be one Bot API call (:func:`send_message`, :func:`answer_callback`), which saves
a request and needs no bot token here.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cartback.channels.inbound import _json
from cartback.channels.inbound.errors import InvalidCallback

__all__ = [
    "SECRET_HEADER",
    "ButtonPress",
    "StartCommand",
    "answer_callback",
    "parse_update",
    "send_message",
    "verify_secret_token",
]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# "/start", "/start@shop_bot", each optionally followed by the deep link's payload.
_START = re.compile(r"/start(?:@[A-Za-z0-9_]{3,64})?(?:\s+(\S+))?\s*", re.ASCII)
MAX_PAYLOAD = 64  # Telegram's limit for a start parameter


@dataclass(frozen=True, slots=True)
class StartCommand:
    update_id: int
    chat_id: int
    payload: str | None
    username: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ButtonPress:
    update_id: int
    query_id: str
    user_id: int
    data: str | None
    chat_id: int | None = None  # None for a button under an inline-mode message
    username: str | None = None


def verify_secret_token(expected: str, header: str | None) -> bool:
    """True when the header is the webhook's ``secret_token`` (constant-time)."""
    if not header or not expected:
        return False
    return hmac.compare_digest(header.encode("utf-8"), expected.encode("utf-8"))


def parse_update(body: bytes) -> StartCommand | ButtonPress | None:
    update = _json.obj(_json.load(body), "body")
    update_id = _int(update.get("update_id"))
    if update_id is None:
        raise InvalidCallback("update_id must be an integer", code="missing_field")
    if "callback_query" in update:
        return _button(update_id, _json.obj(update["callback_query"], "callback_query"))
    message = update.get("message")
    if isinstance(message, dict):
        return _start(update_id, message)
    return None


def _start(update_id: int, message: dict[str, Any]) -> StartCommand | None:
    chat = _json.obj(message.get("chat"), "message.chat")
    text = message.get("text")
    if chat.get("type") != "private" or not isinstance(text, str):
        return None  # a group's chat id is not a shopper's
    found = _START.fullmatch(text.strip())
    if found is None:
        return None
    chat_id = _int(chat.get("id"))
    if chat_id is None:
        raise InvalidCallback("message.chat.id must be an integer", code="invalid_field")
    payload = found.group(1)
    sender = message.get("from")
    return StartCommand(
        update_id=update_id,
        chat_id=chat_id,
        payload=payload if payload and len(payload) <= MAX_PAYLOAD else None,
        username=_username(sender),
        sent_at=_json.from_unix(message.get("date")),
    )


def _button(update_id: int, query: dict[str, Any]) -> ButtonPress:
    query_id = _json.text(query, "id", "callback_query")
    sender = _json.obj(query.get("from"), "callback_query.from")
    user_id = _int(sender.get("id"))
    if user_id is None:
        raise InvalidCallback("callback_query.from.id must be an integer", code="invalid_field")
    chat_id = None
    message = query.get("message")
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        chat_id = _int(message["chat"].get("id"))
    data = query.get("data")
    return ButtonPress(
        update_id=update_id,
        query_id=query_id,
        user_id=user_id,
        data=data if isinstance(data, str) else None,
        chat_id=chat_id,
        username=_username(sender),
    )


def _username(sender: Any) -> str | None:
    return _json.optional_text(sender, "username") if isinstance(sender, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def send_message(chat_id: int, text: str) -> dict[str, Any]:
    """A webhook answer that makes the bot say ``text`` in the chat."""
    return {"method": "sendMessage", "chat_id": chat_id, "text": text}


def answer_callback(query_id: str, text: str | None = None) -> dict[str, Any]:
    """A webhook answer that stops the button's spinner, with an optional notice."""
    body: dict[str, Any] = {"method": "answerCallbackQuery", "callback_query_id": query_id}
    if text:
        body["text"] = text
    return body
