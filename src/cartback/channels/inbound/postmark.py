"""Postmark webhooks (integrations.md section 5).

One JSON event per POST, with no signature: the webhook URL carries HTTP Basic
credentials the store chose (``https://user:pass@host/path``), which Postmark sends as
``Authorization: Basic ...`` (:func:`basic_credentials`, :func:`credentials_match`).

Branch on ``RecordType`` (Delivery, Bounce, SpamComplaint, Open, Click,
SubscriptionChange) and, for bounces, the ``Type`` string (not the numeric code).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Any

from cartback.channels.inbound import _json
from cartback.channels.inbound.email import EmailEvent, EmailEventKind

__all__ = ["basic_credentials", "credentials_match", "parse_events"]

# Bounce ``Type`` values (postmark.js BounceType) that mean the address is gone for good.
HARD_TYPES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
SOFT_TYPES = frozenset(
    {
        "Transient",
        "SoftBounce",
        "DnsError",
        "SpamNotification",
        "ChallengeVerification",
        "Blocked",
        "SMTPApiError",
        "DMARCPolicy",
    }
)


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(username, password)`` from an ``Authorization: Basic`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def credentials_match(given: tuple[str, str], username: str, password: str) -> bool:
    """Both parts compared in constant time (neither short-circuits the other)."""
    user_ok = hmac.compare_digest(given[0].encode("utf-8"), username.encode("utf-8"))
    password_ok = hmac.compare_digest(given[1].encode("utf-8"), password.encode("utf-8"))
    return user_ok & password_ok


def parse_events(body: bytes) -> list[EmailEvent]:
    record = _json.obj(_json.load(body), "body")
    record_type = _json.text(record, "RecordType", "")
    read = _READERS.get(record_type)
    if read is None:
        return []
    found = read(record)
    if found is None:
        return []
    kind, address, when, detail = found
    return [
        EmailEvent(
            provider="postmark",
            kind=kind,
            address=address,
            provider_message_id=_json.optional_text(record, "MessageID"),
            occurred_at=_json.from_iso(record.get(when)),
            detail=detail,
        )
    ]


_Found = tuple[EmailEventKind, str, str, str | None] | None


def _bounce(record: dict[str, Any]) -> _Found:
    bounce_type = _json.optional_text(record, "Type") or ""
    if bounce_type in HARD_TYPES:
        kind = EmailEventKind.HARD_BOUNCE
    elif bounce_type == "SpamComplaint":
        kind = EmailEventKind.COMPLAINT
    elif bounce_type == "Unsubscribe":
        kind = EmailEventKind.UNSUBSCRIBED
    elif bounce_type in SOFT_TYPES:
        kind = EmailEventKind.SOFT_BOUNCE
    else:
        kind = EmailEventKind.OTHER
    address = _json.text(record, "Email", "")
    words = _json.optional_text(record, "Description") or _json.optional_text(record, "Details")
    detail = f"{bounce_type}: {words}" if words else bounce_type or None
    return kind, address, "BouncedAt", detail


def _complaint(record: dict[str, Any]) -> _Found:
    address = _json.text(record, "Email", "")
    return EmailEventKind.COMPLAINT, address, "BouncedAt", _json.optional_text(record, "Details")


def _recipient(kind: EmailEventKind, when: str) -> Callable[[dict[str, Any]], _Found]:
    def read(record: dict[str, Any]) -> _Found:
        return kind, _json.text(record, "Recipient", ""), when, None

    return read


def _subscription(record: dict[str, Any]) -> _Found:
    if record.get("SuppressSending") is not True:
        return None  # a reactivation: the store decides, we do not resubscribe anyone
    address = _json.text(record, "Recipient", "")
    reason = _json.optional_text(record, "SuppressionReason")
    kind = _SUPPRESSION_KINDS.get(reason or "", EmailEventKind.UNSUBSCRIBED)
    return kind, address, "ChangedAt", reason


_SUPPRESSION_KINDS = {
    "HardBounce": EmailEventKind.HARD_BOUNCE,
    "SpamComplaint": EmailEventKind.COMPLAINT,
}


_READERS: dict[str, Callable[[dict[str, Any]], _Found]] = {
    "Bounce": _bounce,
    "SpamComplaint": _complaint,
    "Delivery": _recipient(EmailEventKind.DELIVERED, "DeliveredAt"),
    "Open": _recipient(EmailEventKind.OPENED, "ReceivedAt"),
    "Click": _recipient(EmailEventKind.CLICKED, "ReceivedAt"),
    "SubscriptionChange": _subscription,
}
