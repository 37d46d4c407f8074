"""Mailgun webhooks (integrations.md section 5).

A POST of ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``, one
event per request. ``signature.signature`` is hex HMAC-SHA256 over ``timestamp + token``
with the account's HTTP webhook signing key. A timestamp more than :data:`TOLERANCE`
seconds away from our clock is refused, so a captured request cannot be replayed later.

``event``: accepted, delivered, failed (``severity`` permanent | temporary, ``reason``),
opened, clicked, unsubscribed, complained.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cartback.channels.inbound import _json
from cartback.channels.inbound.email import EmailEvent, EmailEventKind

__all__ = ["TOLERANCE", "MailgunSignature", "parse_events", "read_signature", "sign", "verify"]

TOLERANCE = 300  # seconds

_KINDS: dict[str, EmailEventKind] = {
    "delivered": EmailEventKind.DELIVERED,
    "complained": EmailEventKind.COMPLAINT,
    "unsubscribed": EmailEventKind.UNSUBSCRIBED,
    "opened": EmailEventKind.OPENED,
    "clicked": EmailEventKind.CLICKED,
}


@dataclass(frozen=True, slots=True)
class MailgunSignature:
    timestamp: str
    token: str
    signature: str


def read_signature(data: dict[str, Any]) -> MailgunSignature | None:
    """The ``signature`` object of a parsed body; None when it is missing or incomplete."""
    found = data.get("signature")
    if not isinstance(found, dict):
        return None
    fields = [found.get(key) for key in ("timestamp", "token", "signature")]
    if not all(isinstance(value, str | int) and str(value) for value in fields):
        return None
    return MailgunSignature(*(str(value) for value in fields))


def sign(signing_key: str, timestamp: str, token: str) -> str:
    message = (timestamp + token).encode("utf-8")
    return hmac.new(signing_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    signing_key: str,
    signature: MailgunSignature | None,
    *,
    now: datetime,
    tolerance: float = TOLERANCE,
) -> bool:
    """True when the signature is the key's and its timestamp is within ``tolerance``
    seconds of ``now`` (constant-time)."""
    if signature is None or not signing_key:
        return False
    stamp = signature.timestamp
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        return False
    if abs(now.timestamp() - int(stamp)) > tolerance:
        return False
    try:
        given = signature.signature.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = sign(signing_key, stamp, signature.token).encode("ascii")
    return hmac.compare_digest(given, expected)


def parse_events(data: dict[str, Any]) -> list[EmailEvent]:
    """The body's ``event-data`` as events (one, or none without a recipient)."""
    event = _json.obj(data.get("event-data"), "event-data")
    name = _json.text(event, "event", "event-data")
    recipient = _json.optional_text(event, "recipient")
    if recipient is None:
        return []
    message_id = _message_id(event)
    return [
        EmailEvent(
            provider="mailgun",
            kind=_kind(name, event),
            address=recipient,
            provider_message_id=message_id,
            occurred_at=_json.from_unix(event.get("timestamp")),
            detail=_detail(name, event),
            message_id_header=message_id,
        )
    ]


def load(body: bytes) -> dict[str, Any]:
    return _json.obj(_json.load(body), "body")


def _kind(name: str, event: dict[str, Any]) -> EmailEventKind:
    if name == "failed":
        permanent = event.get("severity") == "permanent"
        return EmailEventKind.HARD_BOUNCE if permanent else EmailEventKind.SOFT_BOUNCE
    return _KINDS.get(name, EmailEventKind.OTHER)


def _message_id(event: dict[str, Any]) -> str | None:
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    return _json.optional_text(headers, "message-id") if isinstance(headers, dict) else None


def _detail(name: str, event: dict[str, Any]) -> str:
    parts = [name]
    for key in ("severity", "reason"):
        if isinstance(event.get(key), str) and event[key]:
            parts.append(str(event[key]))
    status = event.get("delivery-status")
    if isinstance(status, dict):
        words = status.get("description") or status.get("message")
        if isinstance(words, str) and words:
            parts.append(f"{status.get('code', '')} {words}".strip())
    return ": ".join([parts[0], " ".join(parts[1:])]) if len(parts) > 1 else parts[0]
