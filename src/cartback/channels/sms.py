"""The SMS channel contract, mirroring :mod:`cartback.channels.base` for email.

Errors raised by an SMS channel are the same tree as for email, with one addition::

    ChannelError
    ├── TransientSendError
    │   └── SendOutcomeUnknown   the request may have reached the provider and the answer was
    │                            lost (read timeout, connection dropped after sending): the
    │                            message may exist. Mark it "unknown"; do not resend blindly.
    └── PermanentSendError

Neither Twilio nor a generic HTTP provider documents an idempotency key for sending a
message, so a resend after :class:`SendOutcomeUnknown` can deliver the SMS twice; the caller
decides (e.g. look the message up via the status callback before resending).
"""

from __future__ import annotations

import email.utils
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

from cartback.channels.base import SendResult, TransientSendError

__all__ = [
    "DEFAULT_SMS_TIMEOUT",
    "MemorySms",
    "OutgoingSms",
    "SendOutcomeUnknown",
    "SmsChannel",
]

# Twilio answers a create in well under a second; 10 s read covers its slow days while a
# connect that takes more than 5 s means the route is broken, so fail it fast and retry.
DEFAULT_SMS_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS ready to send.

    ``message_id`` is ours. Exactly one of ``from_number`` (E.164) and
    ``messaging_service_sid`` (Twilio ``MG...``: the provider picks the sender) is set.
    ``to_number`` is E.164, e.g. ``+14155552345``.
    """

    message_id: str
    to_number: str
    body: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback_url: str | None = None

    def __post_init__(self) -> None:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number and messaging_service_sid")

    @property
    def sender(self) -> str:
        """The sender key for rate limiting: the number, else the messaging service."""
        return self.from_number or self.messaging_service_sid or ""


class SmsChannel(Protocol):
    """Sends one SMS at a time. Synchronous: the worker runs jobs in a thread pool."""

    name: str

    def send(self, sms: OutgoingSms) -> SendResult: ...

    def close(self) -> None: ...


class SendOutcomeUnknown(TransientSendError):
    """The request was (or may have been) sent and no answer came back."""


class MemorySms:
    """An in-memory :class:`SmsChannel` twin: keeps what it was asked to send. Thread-safe."""

    name = "memory"

    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []
        self._lock = threading.Lock()

    def send(self, sms: OutgoingSms) -> SendResult:
        with self._lock:
            self.sent.append(sms)
            return SendResult(provider=self.name, provider_message_id=f"mem-{len(self.sent)}")

    def close(self) -> None:
        return None


def transport_error(provider: str, exc: httpx.TransportError) -> TransientSendError:
    """Map an httpx transport failure to ``{provider}.connect|timeout|timeout_after_send|...``.

    Before the request is written (connect/pool) nothing reached the provider: plain transient.
    Once bytes were written (write/read timeout, connection dropped mid-exchange) the provider
    may have accepted the message: :class:`SendOutcomeUnknown`. Reasons name only the kind
    of failure: httpx's own text can hold the URL, and some URLs hold a credential.
    """
    kind = type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return TransientSendError(f"{provider}.timeout", f"no connection in time ({kind})")
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError | httpx.UnsupportedProtocol):
        return TransientSendError(f"{provider}.connect", f"cannot connect ({kind})")
    if isinstance(exc, httpx.TimeoutException):  # WriteTimeout, ReadTimeout
        return SendOutcomeUnknown(
            f"{provider}.timeout_after_send", f"sent, no answer in time; may exist ({kind})"
        )
    return SendOutcomeUnknown(
        f"{provider}.dropped_after_send", f"connection lost after sending; may exist ({kind})"
    )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not one (an HTML error page)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    """Seconds from the ``Retry-After`` header (delta-seconds or an HTTP-date), if any."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())
