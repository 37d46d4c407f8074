"""Turn one journey step on one channel into what a provider takes, ready to deliver.

Each channel's composer renders the content, works out the address, the SMS segments and
the cost, and returns a :class:`Prepared` whose ``deliver`` makes the provider call; the
send orchestration (:mod:`cartback.messages.service`) records the intent before calling it.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from cartback.carts.models import Cart
from cartback.channels import (
    EmailChannel,
    OutgoingEmail,
    OutgoingSms,
    OutgoingTelegram,
    OutgoingWhatsApp,
    PermanentSendError,
    SendResult,
    SmsChannel,
    TelegramBot,
    TokenBucket,
    WhatsAppCloud,
)
from cartback.channels.push import OutgoingPush, PushGone
from cartback.channels.webpush import WebPushTarget
from cartback.contacts.models import Contact, PushSubscription
from cartback.content import (
    EmailContext,
    EmailRenderer,
    ItemView,
    ShortContext,
    ShortRenderer,
    StoreInfo,
    build_items,
    format_money,
)
from cartback.content.sms import encode_info
from cartback.core.signing import Signer
from cartback.stores.schemas import StoreSettings

MICROS = Decimal(1_000_000)


class PushSender(Protocol):
    name: str


class WebPush(Protocol):
    def send(self, target: WebPushTarget, push: OutgoingPush) -> SendResult: ...


class MobilePush(Protocol):
    def send(self, token: str, push: OutgoingPush) -> SendResult: ...


class Senders(Protocol):
    """The store's configured provider adapters (built and cached by the runtime)."""

    def email(self, store_id: str, settings: StoreSettings) -> EmailChannel: ...

    def sms(self, store_id: str, settings: StoreSettings) -> SmsChannel: ...

    def whatsapp(self, store_id: str, settings: StoreSettings) -> WhatsAppCloud: ...

    def telegram(self, store_id: str, settings: StoreSettings) -> TelegramBot: ...

    def webpush(self, store_id: str, settings: StoreSettings) -> WebPush | None: ...

    def fcm(self, store_id: str, settings: StoreSettings) -> MobilePush | None: ...

    def limiter(self, store_id: str, settings: StoreSettings, channel: str) -> TokenBucket | None:
        """The send-rate limit of the store's provider for ``channel``, if it has one."""
        ...


@dataclass(frozen=True)
class Links:
    """Where tracked links point; tokens are signed with the instance secret."""

    base_url: str
    signer: Signer

    def restore(self, message_id: str) -> str:
        return f"{self.base_url}/r/{self.signer.sign('r', message_id)}"

    def short_restore(self, message_id: str, base_url: str | None = None) -> str:
        """A restore link short enough for an SMS: ``<base>/s/<22 characters>``.

        Message ids are 122 random bits, so the code itself is unguessable; it needs no
        signature to keep strangers from forging one.
        """
        return f"{(base_url or self.base_url).rstrip('/')}/s/{short_code(message_id)}"

    def unsubscribe(self, message_id: str) -> str:
        return f"{self.base_url}/u/{self.signer.sign('u', message_id)}"

    def open_pixel(self, message_id: str) -> str:
        return f"{self.base_url}/o/{self.signer.sign('o', message_id)}.gif"


def short_code(message_id: str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(hex=message_id).bytes).decode().rstrip("=")


def message_id_of(code: str) -> str | None:
    """The message id a short code stands for, or None for anything else."""
    if len(code) != 22:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(code + "==")).hex
    except ValueError:
        return None


@dataclass(frozen=True)
class StepMessage:
    """What the flow asks of one step on one channel."""

    enrollment_id: str
    step_index: int
    channel: str
    template: str
    subject: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str | None = None


@dataclass(frozen=True)
class Prepared:
    to_address: str
    subject: str | None
    content_hash: str
    deliver: Callable[[], SendResult]
    segments: int | None = None
    cost_micros: int | None = None
    rate_key: str | None = None  # the token bucket's key (the sender), if rate limited


@dataclass(frozen=True)
class Recipient:
    """The contact as one channel reaches it (``address`` from the policy's reading)."""

    contact: Contact
    address: str
    country: str | None
    push: Sequence[PushSubscription] = ()


@dataclass(frozen=True)
class Composer:
    renderer: EmailRenderer
    short: ShortRenderer
    links: Links
    senders: Senders

    def prepare(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        store_name: str,
        settings: StoreSettings,
        on_gone: Callable[[PushSubscription], None] = lambda _: None,
    ) -> Prepared:
        """Render and address the message; raises RenderError when the content cannot be
        made. ``on_gone`` is told of each push subscription the push service has dropped."""
        if step.channel == "email":
            return self._email(message_id, step, cart, to, store_name, settings)
        ctx = self._short_context(message_id, step, cart, to, store_name, settings)
        if step.channel == "sms":
            return self._sms(message_id, step, cart, to, ctx, settings)
        if step.channel == "whatsapp":
            return self._whatsapp(message_id, step, to, ctx, settings)
        if step.channel == "telegram":
            return self._telegram(message_id, step, cart, to, ctx, settings)
        if step.channel == "push":
            return self._push(message_id, step, cart, to, ctx, settings, on_gone)
        raise ValueError(f"unknown channel {step.channel!r}")

    def _email(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        store_name: str,
        settings: StoreSettings,
    ) -> Prepared:
        contact = to.contact
        locale = contact.locale or settings.locale
        unsubscribe = self.links.unsubscribe(message_id)
        ctx = EmailContext(
            store=StoreInfo(
                name=store_name,
                url=settings.url,
                support_email=settings.support_email or settings.sender_email,
                address=settings.address,
                logo_url=None,
            ),
            first_name=contact.first_name,
            locale=locale,
            items=item_views(cart.items, cart.currency, locale),
            total=money(cart.value, cart.currency, locale),
            item_count=cart.item_count,
            restore_url=self.links.restore(message_id),
            unsubscribe_url=unsubscribe,
            open_pixel_url=self.links.open_pixel(message_id),
            step_index=step.step_index,
        )
        rendered = self.renderer.render(step.template, ctx, subject_override=step.subject)
        email = OutgoingEmail(
            message_id=message_id,
            from_address=settings.sender_email,
            from_name=settings.sender_name or store_name,
            to_address=to.address,
            to_name=contact.first_name,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers=(
                ("List-Unsubscribe", f"<{unsubscribe}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
            reply_to=settings.support_email,
        )
        channel = self.senders.email(cart.store_id, settings)
        return Prepared(
            to_address=to.address,
            subject=email.subject,
            content_hash=_hash(email.html),
            deliver=lambda: channel.send(email),
            cost_micros=_micros(settings.costs.email_message),
        )

    def _short_context(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        store_name: str,
        settings: StoreSettings,
    ) -> ShortContext:
        locale = to.contact.locale or settings.locale
        sms = settings.channels.sms
        first = cart.items[0].get("name") if cart.items else None
        return ShortContext(
            store_name=store_name,
            first_name=to.contact.first_name,
            locale=locale,
            total=money(cart.value, cart.currency, locale),
            item_count=cart.item_count,
            first_item=str(first) if first else None,
            link=self.links.short_restore(message_id, sms.short_base_url if sms else None),
            step_index=step.step_index,
        )

    def _sms(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        ctx: ShortContext,
        settings: StoreSettings,
    ) -> Prepared:
        config = settings.channels.sms
        assert config is not None  # the policy does not allow an unconfigured channel
        body = self.short.sms(step.template, ctx, opt_out=not config.provider_adds_opt_out)
        info = encode_info(body)
        sms = OutgoingSms(
            message_id=message_id,
            to_number=to.address,
            body=body,
            from_number=config.from_number,
            messaging_service_sid=config.messaging_service_sid,
            # delivery reports come back signed to the callback route (callbacks.api)
            status_callback_url=(
                f"{self.links.base_url}/v1/callbacks/twilio/{cart.store_id}/status"
                if config.provider == "twilio"
                else None
            ),
        )
        channel = self.senders.sms(cart.store_id, settings)
        prices = settings.costs.sms_segment
        price = prices.get(to.country or "", prices.get("default", Decimal(0)))
        return Prepared(
            to_address=to.address,
            subject=None,
            content_hash=_hash(body),
            deliver=lambda: channel.send(sms),
            segments=info.segments,
            cost_micros=_micros(price * info.segments),
            rate_key=sms.sender,
        )

    def _whatsapp(
        self,
        message_id: str,
        step: StepMessage,
        to: Recipient,
        ctx: ShortContext,
        settings: StoreSettings,
    ) -> Prepared:
        config = settings.channels.whatsapp
        assert config is not None
        msg = OutgoingWhatsApp(
            message_id=message_id,
            to=to.address,
            template_name=step.whatsapp_template or f"cartback_{step.template}",
            language_code=step.whatsapp_language or config.language,
            body_parameters=self.short.whatsapp_parameters(step.template, ctx),
            url_button_parameter=short_code(message_id),
        )
        channel = self.senders.whatsapp(to.contact.store_id, settings)
        return Prepared(
            to_address=to.address,
            subject=msg.template_name,
            content_hash=_hash("\n".join((msg.template_name, *msg.body_parameters))),
            deliver=lambda: channel.send(msg),
            cost_micros=_micros(settings.costs.whatsapp_message),
            rate_key=config.phone_number_id,
        )

    def _telegram(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        ctx: ShortContext,
        settings: StoreSettings,
    ) -> Prepared:
        text = self.short.telegram(step.template, ctx)
        msg = OutgoingTelegram(
            message_id=message_id,
            chat_id=int(to.address),
            text=text.text,
            button_text=text.button,
            button_url=self.links.restore(message_id),
            disable_web_page_preview=True,
            optout_text=self.short.telegram_optout(ctx.locale),
            optout_data="optout:cart",
        )
        channel = self.senders.telegram(cart.store_id, settings)
        return Prepared(
            to_address=to.address,
            subject=None,
            content_hash=_hash(text.text),
            deliver=lambda: channel.send(msg),
            cost_micros=_micros(settings.costs.telegram_message),
        )

    def _push(
        self,
        message_id: str,
        step: StepMessage,
        cart: Cart,
        to: Recipient,
        ctx: ShortContext,
        settings: StoreSettings,
        on_gone: Callable[[PushSubscription], None],
    ) -> Prepared:
        text = self.short.push(step.template, ctx)
        push = OutgoingPush(
            message_id=message_id,
            title=text.title,
            body=text.body,
            url=self.links.restore(message_id),
            icon_url=_first_image(cart),
            ttl_seconds=settings.channels.webpush.ttl_seconds
            if settings.channels.webpush
            else 86400,
        )
        web = self.senders.webpush(cart.store_id, settings)
        mobile = self.senders.fcm(cart.store_id, settings)
        targets = list(to.push)

        def deliver() -> SendResult:
            return _push_to_all(targets, push, web, mobile, on_gone)

        return Prepared(
            to_address=to.address,
            subject=text.title,
            content_hash=_hash(f"{text.title}\n{text.body}"),
            deliver=deliver,
            cost_micros=_micros(settings.costs.push_message),
        )


def _push_to_all(
    targets: Sequence[PushSubscription],
    push: OutgoingPush,
    web: WebPush | None,
    mobile: MobilePush | None,
    on_gone: Callable[[PushSubscription], None],
) -> SendResult:
    """Push to every device of the contact: sent when one took it; the first error if none
    did (a gone subscription is removed and counts as a permanent failure)."""
    accepted: list[str] = []
    first_error: Exception | None = None
    for target in targets:
        try:
            if target.kind == "web" and web is not None:
                keys = target.keys
                result = web.send(
                    WebPushTarget(target.endpoint, str(keys.get("p256dh")), str(keys.get("auth"))),
                    push,
                )
            elif target.kind == "fcm" and mobile is not None:
                result = mobile.send(target.endpoint, push)
            else:
                continue
        except PushGone as exc:
            on_gone(target)
            first_error = first_error or exc
            continue
        except PermanentSendError as exc:
            first_error = first_error or exc
            continue
        accepted.append(result.provider_message_id or result.provider)
    if accepted:
        return SendResult(
            provider="push", provider_message_id=accepted[0], detail=f"{len(accepted)} devices"
        )
    if first_error is not None:
        raise first_error
    raise PermanentSendError("push.no_device", "no push subscription this store can reach")


def _first_image(cart: Cart) -> str | None:
    """The first item's picture, shown large in the notification where the platform can."""
    for item in cart.items:
        image = item.get("image_url")
        if isinstance(image, str) and image.startswith(("https://", "http://")):
            return image
    return None


# --- money and items, formatted once per value ---------------------------------------
#
# Babel formats an amount in ~30 µs, and an email formats two per item plus the total:
# most of the cost of building its context. A store's prices repeat from cart to cart,
# so the formatted strings are cached per (amount, currency, locale), and a cart line's
# view per (its plain fields, currency, locale).

_PLAIN = (str, int, float, bool, type(None))


def money(amount: int, currency: str, locale: str) -> str:
    """:func:`cartback.content.format_money`, cached (the same checks on a miss)."""
    if type(amount) is not int:  # bool is an int: let format_money refuse it
        return format_money(amount, currency, locale)
    return _money(amount, currency, locale)


@lru_cache(maxsize=8192)
def _money(amount: int, currency: str, locale: str) -> str:
    return format_money(amount, currency, locale)


def item_views(raw_items: Iterable[Any], currency: str, locale: str) -> tuple[ItemView, ...]:
    """:func:`cartback.content.build_items`, each line cached when its fields are plain."""
    views: list[ItemView] = []
    for raw in raw_items:
        key = _line_key(raw)
        if key is None:
            views.extend(build_items([raw], currency, locale))
        else:
            views.append(_item_view(key, currency, locale))
    return tuple(views)


def _line_key(raw: Any) -> tuple[tuple[str, type, Any], ...] | None:
    # the value's type is part of the key: True == 1, but build_items refuses a bool price
    if not isinstance(raw, Mapping):
        return None
    key = tuple(sorted((str(name), type(value), value) for name, value in raw.items()))
    return key if all(isinstance(value, _PLAIN) for _, _, value in key) else None


@lru_cache(maxsize=8192)
def _item_view(key: tuple[tuple[str, type, Any], ...], currency: str, locale: str) -> ItemView:
    return build_items([{name: value for name, _, value in key}], currency, locale)[0]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _micros(price: Decimal) -> int:
    return int((price * MICROS).to_integral_value())
