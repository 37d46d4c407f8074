"""The store's provider adapters, built from its settings once and reused.

Part of the composition root: the journey asks for "this store's SMS channel" and gets
a long-lived adapter (its HTTP connections and token caches kept warm), rebuilt only
when the store's settings for it change.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cartback.channels import (
    ChannelPool,
    CircuitBreaker,
    EmailChannel,
    HttpSms,
    HttpSmsConfig,
    OutboxChannel,
    OutgoingEmail,
    OutgoingSms,
    OutgoingTelegram,
    OutgoingWhatsApp,
    PermanentSendError,
    SendResult,
    SmsChannel,
    SmtpChannel,
    TelegramBot,
    TokenBucket,
    TwilioSms,
    WebhookAlert,
    WhatsAppCloud,
)
from cartback.channels.fcm import FcmSender
from cartback.channels.push import OutgoingPush
from cartback.channels.webpush import WebPushSender, WebPushTarget
from cartback.contacts.phones import normalize_phone
from cartback.core.clock import Clock
from cartback.core.ids import new_id
from cartback.stores.schemas import StoreSettings

T = TypeVar("T")


class NotConfigured(LookupError):
    """The store has not configured this channel (the policy never picks it then)."""


class Providers:
    """Implements :class:`cartback.messages.compose.Senders` for the runtime. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Clock,
        breaker: CircuitBreaker,
        outbox: OutboxChannel | None,
        instance_smtp_url: str | None,
        pool_size: int,
    ) -> None:
        self._clock = clock
        self._breaker = breaker
        self._outbox = outbox
        self._smtp_url = instance_smtp_url
        self._pool_size = pool_size
        self._made: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def _get(self, store_id: str, kind: str, config: Any, make: Callable[[], T]) -> T:
        key = (store_id, kind, json.dumps(config, sort_keys=True, default=str))
        with self._lock:
            found = self._made.get(key)
            if found is None:
                found = make()
                self._made[key] = found
            return found

    def email(self, store_id: str, settings: StoreSettings) -> EmailChannel:
        """The store's own SMTP server, else the instance's, else the outbox."""
        url = settings.smtp_url or self._smtp_url
        if url is None:
            assert self._outbox is not None
            return self._outbox
        # one connection per worker thread, reused across sends; shared by stores on one URL
        return self._get(
            "*",
            "smtp",
            url,
            lambda: ChannelPool(
                lambda: SmtpChannel(url, breaker=self._breaker, clock=self._clock),
                size=self._pool_size,
            ),
        )

    def sms(self, store_id: str, settings: StoreSettings) -> SmsChannel:
        config = settings.channels.sms
        if config is None:
            raise NotConfigured("sms")
        if config.provider == "twilio":
            twilio = config.twilio
            assert twilio is not None
            return self._get(
                store_id,
                "twilio",
                twilio.model_dump(),
                lambda: TwilioSms(
                    twilio.account_sid,
                    twilio.auth_token,
                    username=twilio.api_key_sid,
                    base_url=twilio.api_base_url,
                    clock=self._clock,
                ),
            )
        http = config.http
        assert http is not None
        return self._get(
            store_id,
            "http_sms",
            http.model_dump(),
            lambda: HttpSms(
                HttpSmsConfig(
                    url=http.url,
                    template=http.template,
                    method=http.method,
                    encoding=http.encoding,
                    auth_header=(http.auth_header, http.auth_value or "")
                    if http.auth_header
                    else None,
                    success_statuses=frozenset(http.success_statuses),
                    id_path=http.id_path,
                    id_regex=http.id_regex,
                    errors=http.errors,
                    name=http.name,
                ),
                clock=self._clock,
            ),
        )

    def whatsapp(self, store_id: str, settings: StoreSettings) -> WhatsAppCloud:
        config = settings.channels.whatsapp
        if config is None:
            raise NotConfigured("whatsapp")
        return self._get(
            store_id,
            "whatsapp",
            config.model_dump(),
            lambda: WhatsAppCloud(
                config.phone_number_id,
                config.access_token,
                base_url=config.api_base_url,
                api_version=config.api_version,
                clock=self._clock,
            ),
        )

    def telegram(self, store_id: str, settings: StoreSettings) -> TelegramBot:
        config = settings.channels.telegram
        if config is None:
            raise NotConfigured("telegram")
        return self._get(
            store_id,
            "telegram",
            config.model_dump(),
            lambda: TelegramBot(config.bot_token, base_url=config.api_base_url),
        )

    def webpush(self, store_id: str, settings: StoreSettings) -> WebPushSender | None:
        config = settings.channels.webpush
        if config is None:
            return None
        return self._get(
            store_id,
            "webpush",
            config.model_dump(),
            lambda: WebPushSender(config.vapid_private_key, config.subject, clock=self._clock),
        )

    def fcm(self, store_id: str, settings: StoreSettings) -> FcmSender | None:
        config = settings.channels.fcm
        if config is None:
            return None
        return self._get(
            store_id,
            "fcm",
            config.model_dump(),
            lambda: FcmSender(
                config.project_id,
                config.service_account,
                token_url=config.token_url,
                send_url=config.send_url,
                clock=self._clock,
            ),
        )

    def limiter(self, store_id: str, settings: StoreSettings, channel: str) -> TokenBucket | None:
        """The provider's send rate per sender: SMS as configured (Twilio: 1/s per long
        code), WhatsApp per business number, Telegram per bot."""
        channels = settings.channels
        rate: tuple[float, int] | None = None
        if channel == "sms" and channels.sms is not None:
            rate = (channels.sms.rate_per_second, channels.sms.burst)
        elif channel == "whatsapp" and channels.whatsapp is not None:
            rate = (channels.whatsapp.rate_per_second, 1)
        elif channel == "telegram" and channels.telegram is not None:
            rate = (channels.telegram.rate_per_second, 1)
        if rate is None:
            return None
        per_second, burst = rate
        return self._get(
            store_id,
            f"{channel}_rate",
            rate,
            lambda: TokenBucket(self._clock, rate=per_second, burst=burst),
        )

    def team_alert(self, store_id: str, settings: StoreSettings) -> WebhookAlert | None:
        config = settings.channels.team_alert
        if config is None:
            return None
        return self._get(
            store_id,
            "team_alert",
            config.model_dump(),
            lambda: WebhookAlert(
                config.url, config.secret, clock=self._clock, slack=config.format == "slack"
            ),
        )

    def close(self) -> None:
        with self._lock:
            made = list(self._made.values())
            self._made.clear()
        for adapter in made:
            close = getattr(adapter, "close", None)
            if close is not None:
                close()


def send_test(
    providers: Providers,
    *,
    store_id: str,
    store_name: str,
    settings: StoreSettings,
    channel: str,
    to: str,
    push_targets: list[tuple[str, str, dict[str, Any]]] | None = None,
    whatsapp_template: str = "hello_world",
    whatsapp_language: str = "en_US",
) -> SendResult:
    """Send one test message on ``channel`` to ``to`` through the store's own provider and
    return what the provider answered (``cartback channels test``). Raises ChannelError
    with the provider's code and reason, or NotConfigured."""
    message_id = new_id()
    text = f"{store_name}: a test message from cartback. Your channel works."
    if channel == "email":
        return providers.email(store_id, settings).send(
            OutgoingEmail(
                message_id=message_id,
                from_address=settings.sender_email,
                from_name=settings.sender_name or store_name,
                to_address=to,
                to_name=None,
                subject=f"{store_name}: test message",
                text=text,
                html=f"<p>{html.escape(text)}</p>",
            )
        )
    if channel == "sms":
        config = settings.channels.sms
        if config is None:
            raise NotConfigured("sms")
        number = normalize_phone(to, country=settings.country)
        if number.e164 is None:
            raise PermanentSendError("sms.invalid_number", f"{to!r} is not a phone number")
        return providers.sms(store_id, settings).send(
            OutgoingSms(
                message_id=message_id,
                to_number=number.e164,
                body=text,
                from_number=config.from_number,
                messaging_service_sid=config.messaging_service_sid,
            )
        )
    if channel == "whatsapp":
        return providers.whatsapp(store_id, settings).send(
            OutgoingWhatsApp(
                message_id=message_id,
                to=to,
                template_name=whatsapp_template,
                language_code=whatsapp_language,
            )
        )
    if channel == "telegram":
        config_tg = settings.channels.telegram
        if config_tg is None:
            raise NotConfigured("telegram")
        return providers.telegram(store_id, settings).send(
            OutgoingTelegram(
                message_id=message_id,
                chat_id=int(to) if to.lstrip("-").isdigit() else to,
                text=text,
                button_text="Open the store",
                button_url=settings.url,
            )
        )
    if channel == "push":
        push = OutgoingPush(message_id=message_id, title=store_name, body=text, url=settings.url)
        web, mobile = providers.webpush(store_id, settings), providers.fcm(store_id, settings)
        for kind, endpoint, keys in push_targets or []:
            if kind == "web" and web is not None:
                return web.send(
                    WebPushTarget(endpoint, str(keys.get("p256dh")), str(keys.get("auth"))), push
                )
            if kind == "fcm" and mobile is not None:
                return mobile.send(endpoint, push)
        raise PermanentSendError("push.no_device", f"no push subscription for {to!r}")
    raise NotConfigured(channel)
