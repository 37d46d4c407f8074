"""WhatsApp Cloud API webhooks in (integrations.md section 4).

- ``GET`` handshake: ``hub.mode=subscribe``, ``hub.verify_token`` (the store's), and
  ``hub.challenge`` to echo back as the body (:func:`check_handshake`).
- ``POST`` JSON signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret,
  raw body)>`` (:func:`verify_signature`; Meta's vector: key ``hush``, body ``{"id":1}`` ->
  ``sha256=5672948d...c649e6``), carrying ``entry[].changes[].value.statuses[]``
  (:func:`parse_statuses`). Statuses may arrive out of order; inbound ``messages[]`` in
  the same shape are not statuses and are skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cartback.channels.inbound import _json
from cartback.channels.inbound.errors import InvalidCallback

__all__ = [
    "SIGNATURE_HEADER",
    "WhatsAppStatus",
    "check_handshake",
    "parse_statuses",
    "signature",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
# Meta sends a number; anything echoed back is kept short and plain.
_CHALLENGE = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


@dataclass(frozen=True, slots=True)
class WhatsAppStatus:
    """One ``statuses[]`` entry: ``status`` is sent | delivered | read | failed (or a
    value Meta adds later, kept as given); ``error_code`` is ``errors[0].code``."""

    message_id: str
    status: str
    timestamp: datetime | None = None
    recipient_id: str | None = None
    error_code: int | None = None
    error_title: str | None = None
    phone_number_id: str | None = None


def signature(app_secret: str, body: bytes) -> str:
    return _PREFIX + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` signs the exact ``body`` with ``app_secret`` (constant-time)."""
    if not header or not app_secret:
        return False
    try:
        given = header.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, signature(app_secret, body).encode("ascii"))


def check_handshake(params: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to echo when the handshake names our token; None when it does not
    (answer 403). Raises :class:`InvalidCallback` when it is not a handshake at all."""
    mode = params.get("hub.mode")
    token = params.get("hub.verify_token")
    challenge = params.get("hub.challenge")
    if mode is None or token is None or challenge is None:
        raise InvalidCallback(
            "A handshake needs hub.mode, hub.verify_token and hub.challenge",
            code="missing_field",
        )
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidCallback("hub.challenge is not a plain token", code="invalid_field")
    token_ok = hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8"))
    if mode != "subscribe" or not token_ok:
        return None
    return challenge


def parse_statuses(body: bytes) -> list[WhatsAppStatus]:
    data = _json.obj(_json.load(body), "body")
    if data.get("object") != "whatsapp_business_account":
        raise InvalidCallback(
            "object must be 'whatsapp_business_account'", code="unexpected_object"
        )
    found: list[WhatsAppStatus] = []
    for i, entry in enumerate(_json.array(data.get("entry", []), "entry")):
        changes = _json.obj(entry, f"entry[{i}]").get("changes", [])
        for j, change in enumerate(_json.array(changes, f"entry[{i}].changes")):
            path = f"entry[{i}].changes[{j}]"
            value = _json.obj(_json.obj(change, path).get("value", {}), f"{path}.value")
            found.extend(_statuses(value, f"{path}.value"))
    return found


def _statuses(value: dict[str, Any], path: str) -> list[WhatsAppStatus]:
    metadata = value.get("metadata")
    phone_number_id = None
    if isinstance(metadata, dict):
        phone_number_id = _json.optional_text(metadata, "phone_number_id")
    statuses = _json.array(value.get("statuses", []), f"{path}.statuses")
    parsed = []
    for k, item in enumerate(statuses):
        where = f"{path}.statuses[{k}]"
        status = _json.obj(item, where)
        code, title = _first_error(status.get("errors"))
        parsed.append(
            WhatsAppStatus(
                message_id=_json.text(status, "id", where),
                status=_json.text(status, "status", where).lower(),
                timestamp=_json.from_unix(status.get("timestamp")),
                recipient_id=_json.optional_text(status, "recipient_id"),
                error_code=code,
                error_title=title,
                phone_number_id=phone_number_id,
            )
        )
    return parsed


def _first_error(errors: Any) -> tuple[int | None, str | None]:
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None
    first = errors[0]
    code = first.get("code")
    title = _json.optional_text(first, "title") or _json.optional_text(first, "message")
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), title
