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
from cartback.channels.fcm import FcmSender
from cartback.channels.http_sms import HttpSms, HttpSmsConfig
from cartback.channels.mime import build_mime
from cartback.channels.outbox import CapturedEmail, OutboxChannel
from cartback.channels.pool import ChannelPool
from cartback.channels.push import OutgoingPush, PushGone
from cartback.channels.ratelimit import TokenBucket
from cartback.channels.sms import MemorySms, OutgoingSms, SendOutcomeUnknown, SmsChannel
from cartback.channels.smtp import SmtpChannel
from cartback.channels.telegram import OutgoingTelegram, TelegramBot, TelegramChatGone
from cartback.channels.twilio import TwilioSms
from cartback.channels.webhook import TeamAlert, WebhookAlert, verify_signature
from cartback.channels.webpush import WebPushSender, WebPushTarget
from cartback.channels.whatsapp import OutgoingWhatsApp, WhatsAppCloud

__all__ = [
    "CapturedEmail",
    "ChannelError",
    "ChannelPool",
    "CircuitBreaker",
    "EmailChannel",
    "FcmSender",
    "HttpSms",
    "HttpSmsConfig",
    "MemorySms",
    "OutboxChannel",
    "OutgoingEmail",
    "OutgoingPush",
    "OutgoingSms",
    "OutgoingTelegram",
    "OutgoingWhatsApp",
    "PermanentSendError",
    "PushGone",
    "SendOutcomeUnknown",
    "SendResult",
    "SmsChannel",
    "SmtpChannel",
    "TeamAlert",
    "TelegramBot",
    "TelegramChatGone",
    "TokenBucket",
    "TransientSendError",
    "TwilioSms",
    "WebPushSender",
    "WebPushTarget",
    "WebhookAlert",
    "WhatsAppCloud",
    "build_mime",
    "verify_signature",
]
