"""The email channel contract: what goes out, what comes back, and what can go wrong.

Errors raised by a channel::

    ChannelError                 code (stable, dotted) + reason (human text)
    ├── TransientSendError       try again later: network, timeout, 4xx SMTP reply,
    │                            HTTP 429/5xx, an open circuit breaker; may carry retry_after
    └── PermanentSendError       never retry this message: 5xx SMTP reply, invalid address,
                                 a message that cannot be built (header injection)

Only transient errors are retried (with backoff) by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One email ready to send.

    ``message_id`` is ours; the Message-ID header is ``<{message_id}@{domain of from_address}>``.
    ``headers`` are extra headers, e.g. ``List-Unsubscribe`` and ``List-Unsubscribe-Post``.
    """

    message_id: str
    from_address: str
    from_name: str
    to_address: str
    to_name: str | None
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    provider_message_id: str | None
    detail: str = ""


class ChannelError(Exception):
    """Root of channel errors; ``code`` is stable (``smtp.550``), ``reason`` is for humans."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class TransientSendError(ChannelError):
    """The send may succeed later; ``retry_after`` (seconds) when the other side said when."""

    def __init__(self, code: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(code, reason)
        self.retry_after = retry_after


class PermanentSendError(ChannelError):
    """Sending this message again will fail the same way."""


class EmailChannel(Protocol):
    """Sends one email at a time. Synchronous: the worker runs jobs in a thread pool."""

    name: str

    def send(self, email: OutgoingEmail) -> SendResult: ...

    def close(self) -> None: ...
