"""Team alert: a signed outgoing webhook (or a Slack incoming webhook) for "call this shopper".

``POST <url>`` with a JSON body: either our own event document (:func:`alert_body`, keys in a
fixed order, money as integer minor units + currency, ``occurred_at`` ISO 8601 UTC) or, with
``slack=True``, a Slack incoming-webhook body (:func:`slack_body`: ``text`` + ``blocks``).

Headers::

    Content-Type: application/json
    X-Cartback-Event: cart_abandoned | cart_recovered
    X-Cartback-Delivery: <alert_id>          the receiver's idempotency key (same on retries)
    X-Cartback-Timestamp: <unix seconds>
    X-Cartback-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

Receivers check with :func:`verify_signature` over the exact bytes received, and refuse
timestamps more than ``tolerance`` seconds from their clock (replays).

Outcomes:

=============================================  ==============================================
2xx                                            ``SendResult("webhook", alert_id)``
410                                            :class:`PermanentSendError` ``webhook.410``:
                                               the receiver is gone; stop sending to this URL
408, 429 (``Retry-After`` honoured)            :class:`TransientSendError` ``webhook.<status>``
other 4xx, 3xx (redirects are not followed)    :class:`PermanentSendError` ``webhook.<status>``
5xx (``Retry-After`` honoured)                 :class:`TransientSendError` ``webhook.<status>``
connect failure / connect timeout              :class:`TransientSendError` ``webhook.connect``
                                               / ``webhook.timeout``
timeout or dropped connection after sending    :class:`SendOutcomeUnknown`: the receiver may
                                               have it; a retry reuses ``X-Cartback-Delivery``
=============================================  ==============================================

The secret never appears in an error, a log record or a ``repr``; neither does the URL (a
Slack incoming-webhook URL is itself a credential). Transport errors are re-raised
``from None`` so no chained httpx exception carries the request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from cartback.channels.base import PermanentSendError, SendResult, TransientSendError
from cartback.channels.sms import retry_after, transport_error
from cartback.core.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_WEBHOOK_TIMEOUT",
    "SIGNATURE_TOLERANCE",
    "AlertKind",
    "TeamAlert",
    "WebhookAlert",
    "alert_body",
    "encode_body",
    "sign",
    "slack_body",
    "verify_signature",
]

log = logging.getLogger(__name__)

AlertKind = Literal["cart_abandoned", "cart_recovered"]
ALERT_KINDS: frozenset[str] = frozenset({"cart_abandoned", "cart_recovered"})
DEFAULT_WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SIGNATURE_TOLERANCE = 300
SIGNATURE_PREFIX = "sha256="
MAX_SLACK_ITEMS = 10
MAX_REASON_CHARS = 200

_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,200}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class TeamAlert:
    """One alert for the store's team. ``cart_value`` is in minor units of ``currency``;
    ``value_text`` and each item's ``line_total_text`` are already formatted for people.
    ``items`` are ``(name, quantity, line_total_text)``. ``alert_id`` is the idempotency key
    the receiver sees as ``X-Cartback-Delivery``: keep it the same across retries.
    """

    alert_id: str
    kind: AlertKind
    store_name: str
    cart_id: str
    cart_value: int
    currency: str
    value_text: str
    items: tuple[tuple[str, int, str], ...]
    occurred_at: datetime
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    cart_url: str | None = None

    def __post_init__(self) -> None:
        if not _HEADER_SAFE.fullmatch(self.alert_id):
            raise ValueError("alert_id must be 1-200 printable ASCII characters without spaces")
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"kind must be one of {sorted(ALERT_KINDS)}")
        if isinstance(self.cart_value, bool) or not isinstance(self.cart_value, int):
            raise ValueError("cart_value must be an int (minor units)")
        if self.cart_value < 0:
            raise ValueError("cart_value must not be negative")
        if not _CURRENCY.fullmatch(self.currency):
            raise ValueError("currency must be an ISO 4217 code, e.g. 'EUR'")
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")
        for item in self.items:
            if len(item) != 3:
                raise ValueError("each item must be (name, quantity, line_total_text)")
            _, quantity, _ = item
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise ValueError("item quantity must be an int")
        if self.cart_url is not None and not self.cart_url.startswith(("https://", "http://")):
            raise ValueError("cart_url must be an http(s) URL")


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``."""
    mac = hmac.new(_key(secret), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: bytes,
    header: str | None,
    *,
    now: datetime,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:
    """True when ``header`` signs ``timestamp`` + ``body`` with ``secret`` and ``timestamp``
    is within ``tolerance`` seconds of ``now`` (either side). Constant-time comparison.
    ``body`` must be the exact bytes received, before any JSON parsing.
    """
    if not header or not secret:
        return False
    stamp = str(timestamp)
    if not stamp.isascii() or not stamp.isdigit():
        return False
    if abs(now.timestamp() - int(stamp)) > tolerance:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(given, sign(secret, stamp, body).encode("ascii"))


def alert_body(alert: TeamAlert) -> dict[str, Any]:
    """Our event document, keys in this fixed order."""
    return {
        "event": alert.kind,
        "alert_id": alert.alert_id,
        "occurred_at": _iso_utc(alert.occurred_at),
        "store_name": alert.store_name,
        "cart_id": alert.cart_id,
        "cart_value": alert.cart_value,
        "currency": alert.currency,
        "value_text": alert.value_text,
        "items": [
            {"name": name, "quantity": quantity, "line_total_text": line_total}
            for name, quantity, line_total in alert.items
        ],
        "contact_name": alert.contact_name,
        "contact_email": alert.contact_email,
        "contact_phone": alert.contact_phone,
        "cart_url": alert.cart_url,
    }


def slack_body(alert: TeamAlert) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification fallback) and ``blocks``.

    Abandoned carts get a "Call this shopper" section (contact, items, value); recovered carts
    a "Cart recovered" one with the same details.
    """
    store = _mrkdwn(alert.store_name)
    who = _mrkdwn(alert.contact_name or alert.contact_email or alert.contact_phone or "a shopper")
    value = _mrkdwn(alert.value_text)
    if alert.kind == "cart_abandoned":
        title = f"Abandoned cart at {alert.store_name}: {alert.value_text}"
        text = f"Call this shopper: {who}, cart of {value} abandoned at {store}"
        heading = "*Call this shopper*"
    else:
        title = f"Cart recovered at {alert.store_name}: {alert.value_text}"
        text = f"Cart recovered: {who} completed a cart of {value} at {store}"
        heading = "*Cart recovered*"
    fields = [
        {"type": "mrkdwn", "text": f"*Contact*\n{_contact_lines(alert)}"},
        {"type": "mrkdwn", "text": f"*Value*\n{value}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": heading}, "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Items*\n{_item_lines(alert)}"}},
    ]
    context = f"Cart `{_mrkdwn(alert.cart_id)}` · {_iso_utc(alert.occurred_at)}"
    if alert.cart_url is not None:
        context += f" · <{_mrkdwn(alert.cart_url)}|Open cart>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": text, "blocks": blocks}


def encode_body(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order: the exact bytes that get signed."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookAlert:
    """Posts :class:`TeamAlert` s to one URL, signed with ``secret``. Thread-safe.

    ``client`` is injectable (tests use a local server); a client made here is closed by
    :meth:`close`, an injected one is left to its owner. ``clock`` gives the signature
    timestamp and resolves HTTP-date ``Retry-After`` values.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_WEBHOOK_TIMEOUT,
        clock: Clock | None = None,
        slack: bool = False,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("url must be an http(s) URL")
        if not secret:
            raise ValueError("secret must not be empty")
        self._url = url
        self._secret = secret
        self._slack = slack
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WebhookAlert(url={_REDACTED!r}, secret={_REDACTED!r}, slack={self._slack!r})"

    def send(self, alert: TeamAlert) -> SendResult:
        body = encode_body(slack_body(alert) if self._slack else alert_body(alert))
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Cartback-Event": alert.kind,
            "X-Cartback-Delivery": alert.alert_id,
            "X-Cartback-Timestamp": timestamp,
            "X-Cartback-Signature": sign(self._secret, timestamp, body),
        }
        try:
            response = self._client.post(
                self._url,
                content=body,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TransportError as exc:
            failure = transport_error("webhook", exc)
            self._log_failure(alert, failure.code)
            # Not chained: the httpx exception carries the request (URL, signed headers).
            raise failure from None
        if 200 <= response.status_code < 300:
            return SendResult(
                provider=self.name,
                provider_message_id=alert.alert_id,
                detail=f"http_{response.status_code}",
            )
        error = self._error(response)
        self._log_failure(alert, error.code)
        raise error

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _error(self, response: httpx.Response) -> TransientSendError | PermanentSendError:
        status = response.status_code
        code = f"webhook.{status}"
        reason = self._reason(response)
        if status == 410:
            return PermanentSendError(code, f"the receiver is gone: {reason}")
        if status in (408, 429) or status >= 500:
            wait = retry_after(response, self._clock.now())
            return TransientSendError(code, reason, retry_after=wait)
        if 300 <= status < 400:
            return PermanentSendError(code, f"the receiver redirected; update the URL: {reason}")
        return PermanentSendError(code, reason)

    def _reason(self, response: httpx.Response) -> str:
        """The status phrase and the start of the body (Slack answers e.g. ``no_service``)."""
        text = " ".join(response.text.split())[:MAX_REASON_CHARS] if response.content else ""
        reason = f"{response.reason_phrase} {text}".strip() or f"HTTP {response.status_code}"
        secret = (
            self._secret
            if isinstance(self._secret, str)
            else self._secret.decode("utf-8", "replace")
        )
        return reason.replace(secret, _REDACTED).replace(self._url, _REDACTED)

    def _log_failure(self, alert: TeamAlert, code: str) -> None:
        log.warning(
            "webhook.send_failed",
            extra={"provider": self.name, "code": code, "alert_id": alert.alert_id},
        )


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _contact_lines(alert: TeamAlert) -> str:
    lines = [
        _mrkdwn(value)
        for value in (alert.contact_name, alert.contact_phone, alert.contact_email)
        if value
    ]
    return "\n".join(lines) or "_unknown_"


def _item_lines(alert: TeamAlert) -> str:
    shown = alert.items[:MAX_SLACK_ITEMS]
    lines = [
        f"• {quantity} × {_mrkdwn(name)} — {_mrkdwn(line_total)}"
        for name, quantity, line_total in shown
    ]
    hidden = len(alert.items) - len(shown)
    if hidden:
        lines.append(f"…and {hidden} more")
    return "\n".join(lines) or "_no items_"
