"""SendGrid's Signed Event Webhook (integrations.md section 5).

A POST of a JSON array of events. ``X-Twilio-Email-Event-Webhook-Signature`` is base64 DER
ECDSA (P-256, SHA-256) over ``timestamp + raw body``, the timestamp being
``X-Twilio-Email-Event-Webhook-Timestamp``; the verification key is the base64 DER
SubjectPublicKeyInfo shown in SendGrid's Mail Settings (a PEM is accepted too).

``event``: processed, dropped, delivered, deferred, bounce (``type`` bounce | blocked),
open, click, spamreport, unsubscribe, group_unsubscribe, group_resubscribe.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cartback.channels.inbound import _json
from cartback.channels.inbound.email import EmailEvent, EmailEventKind

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "load_public_key",
    "parse_events",
    "verify",
]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

_KINDS: dict[str, EmailEventKind] = {
    "delivered": EmailEventKind.DELIVERED,
    "deferred": EmailEventKind.DEFERRED,
    "dropped": EmailEventKind.DROPPED,
    "open": EmailEventKind.OPENED,
    "click": EmailEventKind.CLICKED,
    "spamreport": EmailEventKind.COMPLAINT,
    "unsubscribe": EmailEventKind.UNSUBSCRIBED,
    "group_unsubscribe": EmailEventKind.UNSUBSCRIBED,
}


def load_public_key(key: str) -> ec.EllipticCurvePublicKey:
    """The verification key from base64 DER (as SendGrid shows it) or PEM.
    Raises ValueError for anything that is not an EC public key."""
    text = key.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            loaded = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise ValueError(f"not a public key: {type(exc).__name__}") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    return loaded


def verify(public_key: str, body: bytes, signature: str | None, timestamp: str | None) -> bool:
    """True when ``signature`` is the key's ECDSA signature of ``timestamp + body``.
    A key that cannot be read verifies nothing."""
    if not signature or not timestamp:
        return False
    try:
        key = load_public_key(public_key)
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (ValueError, binascii.Error, InvalidSignature, UnicodeEncodeError):
        return False
    return True


def parse_events(body: bytes) -> list[EmailEvent]:
    events = _json.array(_json.load(body), "body")
    found = []
    for i, item in enumerate(events):
        event = _json.obj(item, f"[{i}]")
        name = _json.text(event, "event", f"[{i}]")
        address = _json.text(event, "email", f"[{i}]")
        found.append(
            EmailEvent(
                provider="sendgrid",
                kind=_kind(name, event),
                address=address,
                provider_message_id=_message_id(event.get("sg_message_id")),
                occurred_at=_json.from_unix(event.get("timestamp")),
                detail=_detail(name, event),
                message_id_header=_json.optional_text(event, "smtp-id"),
            )
        )
    return found


def _kind(name: str, event: dict[str, Any]) -> EmailEventKind:
    if name == "bounce":
        # "blocked" is the receiving server refusing us for now; "bounce" (or no type,
        # in older payloads) is the address refusing mail for good
        blocked = event.get("type") == "blocked"
        return EmailEventKind.SOFT_BOUNCE if blocked else EmailEventKind.HARD_BOUNCE
    return _KINDS.get(name, EmailEventKind.OTHER)


def _message_id(value: Any) -> str | None:
    """``sg_message_id`` is the send's ``X-Message-Id`` plus ``.filter...`` routing."""
    if not isinstance(value, str) or not value:
        return None
    return value.split(".filter", 1)[0]


def _detail(name: str, event: dict[str, Any]) -> str | None:
    parts = [str(event[key]) for key in ("status", "reason", "response") if event.get(key)]
    return f"{name}: {' '.join(parts)}" if parts else name
