"""Outbound channels: one small Protocol per kind, real adapters and an in-memory outbox.

Nothing here knows about stores, carts or contacts: channels take plain dataclasses.
"""

from cartback.channels.base import (
    ChannelError,
    EmailChannel,
    OutgoingEmail,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from cartback.channels.breaker import CircuitBreaker
from cartback.channels.mime import build_mime
from cartback.channels.outbox import CapturedEmail, OutboxChannel
from cartback.channels.pool import ChannelPool
from cartback.channels.smtp import SmtpChannel

__all__ = [
    "CapturedEmail",
    "ChannelError",
    "ChannelPool",
    "CircuitBreaker",
    "EmailChannel",
    "OutboxChannel",
    "OutgoingEmail",
    "PermanentSendError",
    "SendResult",
    "SmtpChannel",
    "TransientSendError",
    "build_mime",
]
