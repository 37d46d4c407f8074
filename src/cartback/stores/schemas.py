"""A store's settings: identity, timing, each channel's provider and the contact policy.

Kept as JSON on the store row and validated here on every write; every field has a sane
default, so ``{}`` is a working store (email through the outbox or the instance's SMTP).
Provider credentials live here too: the database is the store's own, self-hosted, and
:meth:`StoreSettings.redacted` is what any listing shows.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cartback.core.durations import parse_duration

Channel = Literal["email", "sms", "whatsapp", "telegram", "push"]
CHANNELS: tuple[str, ...] = ("email", "sms", "whatsapp", "telegram", "push")
# Channels that reach a phone's lock screen: quiet hours apply to them by default.
INTERRUPTING: tuple[Channel, ...] = ("sms", "whatsapp", "telegram", "push")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REDACTED = "<redacted>"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().upper()
    if not _COUNTRY.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as US or LT")
    return value


class TwilioSettings(_Settings):
    account_sid: str = Field(min_length=2, max_length=64)
    auth_token: str = Field(min_length=1, max_length=200)
    # a standard API key (SK...) authenticates instead of the account SID when set
    api_key_sid: str | None = Field(None, max_length=64)
    api_base_url: str = "https://api.twilio.com"


class HttpSmsSettings(_Settings):
    """A regional provider spoken to by template (see ``cartback.channels.http_sms``)."""

    url: str = Field(pattern=r"^https?://", max_length=2048)
    method: Literal["POST", "GET", "PUT"] = "POST"
    encoding: Literal["json", "form"] = "json"
    template: str | dict[str, Any] | None = None
    auth_header: str | None = Field(None, description="header name, e.g. Authorization")
    auth_value: str | None = Field(None, description="header value, e.g. 'Bearer s3cret'")
    success_statuses: list[int] = Field(default_factory=lambda: [200, 201, 202])
    id_path: str | None = None
    id_regex: str | None = None
    errors: dict[str, Literal["permanent", "transient"]] = Field(default_factory=dict)
    name: str = Field("http_sms", pattern=r"^[a-z0-9_]{1,32}$")


class SmsSettings(_Settings):
    provider: Literal["twilio", "http"] = "twilio"
    twilio: TwilioSettings | None = None
    http: HttpSmsSettings | None = None
    from_number: str | None = Field(None, description="E.164 sender, e.g. +14155550100")
    messaging_service_sid: str | None = Field(None, description="Twilio MG..., instead")
    # Twilio queues a long code at 1 message/s (integrations.md section 3)
    rate_per_second: float = Field(1.0, gt=0, le=1000)
    burst: int = Field(1, ge=1, le=1000)
    provider_adds_opt_out: bool = False
    # a shorter origin for tracked links in SMS, e.g. https://go.shop.com (else base URL)
    short_base_url: str | None = Field(None, pattern=r"^https?://[^/]+/?$")

    @model_validator(mode="after")
    def _complete(self) -> SmsSettings:
        if self.provider == "twilio" and self.twilio is None:
            raise ValueError("provider 'twilio' needs the 'twilio' settings")
        if self.provider == "http" and self.http is None:
            raise ValueError("provider 'http' needs the 'http' settings")
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number and messaging_service_sid")
        return self


class WhatsAppSettings(_Settings):
    phone_number_id: str = Field(min_length=1, max_length=64)
    access_token: str = Field(min_length=1)
    app_secret: str | None = Field(None, description="verifies X-Hub-Signature-256")
    verify_token: str | None = Field(None, description="answers the GET handshake")
    api_base_url: str = "https://graph.facebook.com"
    api_version: str = "v24.0"
    language: str = Field("en_US", description="template language when a step names none")
    # Cloud API throughput per business number: 80 messages/s by default
    rate_per_second: float = Field(80.0, gt=0, le=1000)


class TelegramSettings(_Settings):
    bot_token: str = Field(min_length=3)
    bot_username: str = Field(pattern=r"^[A-Za-z0-9_]{3,64}$")
    webhook_secret: str = Field(
        min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$", description="secret_token"
    )
    api_base_url: str = "https://api.telegram.org"
    # the Bot API's broadcast limit: about 30 messages/s per bot
    rate_per_second: float = Field(30.0, gt=0, le=1000)


class WebPushSettings(_Settings):
    vapid_private_key: str = Field(min_length=1, description="PEM or base64url raw key")
    vapid_public_key: str = Field(min_length=1, description="base64url, for the browser")
    subject: str = Field(pattern=r"^(mailto:|https://)", description="RFC 8292 'sub' claim")
    ttl_seconds: int = Field(86_400, ge=0, le=2_419_200)


class FcmSettings(_Settings):
    project_id: str = Field(min_length=1)
    service_account: dict[str, Any] = Field(description="the service account JSON key")
    token_url: str | None = Field(None, description="else the key's token_uri")
    send_url: str | None = Field(None, description="else FCM's v1 messages:send endpoint")


class TeamAlertSettings(_Settings):
    url: str = Field(pattern=r"^https?://", max_length=2048)
    secret: str = Field(min_length=16, description="HMAC-SHA256 key for X-Cartback-Signature")
    format: Literal["json", "slack"] = "json"
    min_value: int = Field(10_000, ge=0, description="minor units: alert for carts at least this")
    on_recovery: bool = False


class QuietHours(_Settings):
    """No sends from ``start`` to ``end`` in the contact's local time (may cross midnight)."""

    start: time = time(21, 0)
    end: time = time(9, 0)


def _default_quiet() -> dict[Channel, QuietHours | None]:
    return {channel: QuietHours() for channel in INTERRUPTING}


class CountryRule(_Settings):
    """Stricter local rules, e.g. France: no marketing SMS on Sundays or public holidays."""

    channels: list[Channel] = Field(default_factory=lambda: list(INTERRUPTING))
    quiet_hours: QuietHours | None = None
    no_sundays: bool = False
    no_public_holidays: bool = False


class ContactPolicy(_Settings):
    """One policy for every channel, evaluated before every send (see flows.policy)."""

    # opt_out: email unless withdrawn (CAN-SPAM); opt_in: only after an explicit yes;
    # soft_opt_in: opt-in, or an existing customer (EU soft opt-in, ePrivacy art. 13(2))
    email_basis: Literal["opt_out", "opt_in", "soft_opt_in"] = "opt_out"
    quiet_hours: dict[Channel, QuietHours | None] = Field(default_factory=_default_quiet)
    countries: dict[str, CountryRule] = Field(default_factory=dict)
    min_gap: str = Field("16h", description="at most one message per contact per this long")
    max_per_journey: int = Field(4, ge=1, le=20)
    newsletter_moves_to_next_day: bool = True
    pending_order_window: str | None = Field(
        "14d", description="an unfulfilled order this recent stops cart reminders; null: off"
    )
    sunset_after: int = Field(3, ge=0, le=50, description="ignored journeys; 0: never")
    us_sms_rules: bool = False
    stop_words: list[str] = Field(default_factory=list, description="extra STOP keywords")
    help_text: str = Field("{store}: cart reminders. Reply STOP to opt out.", max_length=320)

    @field_validator("min_gap", "pending_order_window")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: dict[str, CountryRule]) -> dict[str, CountryRule]:
        return {str(_country(k)): v for k, v in value.items()}

    @property
    def gap(self) -> timedelta:
        return parse_duration(self.min_gap)

    @property
    def pending_order(self) -> timedelta | None:
        return parse_duration(self.pending_order_window) if self.pending_order_window else None


class Costs(_Settings):
    """What a send costs, in the store's currency (decimal strings keep cents exact)."""

    sms_segment: dict[str, Decimal] = Field(
        default_factory=dict, description="country code or 'default' -> price per segment"
    )
    whatsapp_message: Decimal = Decimal(0)
    email_message: Decimal = Decimal(0)
    telegram_message: Decimal = Decimal(0)
    push_message: Decimal = Decimal(0)


class EmailEventSettings(_Settings):
    """How each email provider's event webhook (bounces, complaints) proves itself."""

    sendgrid_public_key: str | None = Field(None, description="Signed Event Webhook key")
    mailgun_signing_key: str | None = Field(None, description="HTTP webhook signing key")
    postmark_username: str | None = Field(None, description="Basic auth on the webhook URL")
    postmark_password: str | None = None
    ses_topic_arns: list[str] = Field(
        default_factory=list, description="SNS topics whose notifications are accepted"
    )


class ChannelSettings(_Settings):
    sms: SmsSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    telegram: TelegramSettings | None = None
    webpush: WebPushSettings | None = None
    fcm: FcmSettings | None = None
    team_alert: TeamAlertSettings | None = None
    email_events: EmailEventSettings = Field(default_factory=EmailEventSettings)


class ShopifySettings(_Settings):
    """Shopify webhooks in (``POST /v1/webhooks/shopify/<store id>``)."""

    webhook_secret: str = Field(
        min_length=1,
        max_length=256,
        description="verifies X-Shopify-Hmac-Sha256: the app's client secret, or the key "
        "shown under Settings > Notifications > Webhooks",
    )
    previous_webhook_secret: str | None = Field(
        None, max_length=256, description="also accepted while a rotated secret rolls out"
    )


class WooCommerceSettings(_Settings):
    """WooCommerce webhooks in (``POST /v1/webhooks/woocommerce/<store id>``)."""

    webhook_secret: str = Field(
        min_length=1, max_length=256, description="the webhook's Secret: X-WC-Webhook-Signature"
    )


# A JSON path as the generic webhook reads it: ``$`` then ``.key``, ``[0]`` or ``[*]`` steps,
# e.g. ``$.cart.lines[*]``. Keys are anything but ``.``, ``[`` and ``]``.
JSON_PATH = r"^\$(\.[^.\[\]]+|\[(\d+|\*)\])*$"
JsonPath = Annotated[str, Field(pattern=JSON_PATH, max_length=300)]
GenericKind = Literal["cart", "order", "contact", "cleared", "ignore"]


class GenericItemFields(_Settings):
    """Where each line item's fields are, relative to the line item (``$`` is the line)."""

    sku: JsonPath = "$.sku"
    name: JsonPath = "$.name"
    unit_price: JsonPath = "$.price"
    quantity: JsonPath = "$.quantity"
    url: JsonPath | None = None
    image_url: JsonPath | None = None
    variant: JsonPath | None = None


class GenericCartFields(_Settings):
    id: JsonPath
    items: JsonPath | None = Field(None, description="the line items, e.g. $.cart.lines[*]")
    item: GenericItemFields = Field(default_factory=GenericItemFields)
    currency: JsonPath | None = Field(None, description="else the store's currency")
    restore_url: JsonPath | None = None


class GenericContactFields(_Settings):
    email: JsonPath | None = None
    phone: JsonPath | None = None
    first_name: JsonPath | None = None
    locale: JsonPath | None = None
    country: JsonPath | None = None
    external_id: JsonPath | None = None
    consent_email: JsonPath | None = Field(None, description="true: opted in; false: withdrew")
    consent_sms: JsonPath | None = None


class GenericOrderFields(_Settings):
    id: JsonPath
    total: JsonPath
    cart_id: JsonPath | None = None
    currency: JsonPath | None = Field(None, description="else the store's currency")
    discount_codes: JsonPath | None = Field(None, description="e.g. $.order.coupons[*].code")


class GenericWebhookSettings(_Settings):
    """Any other platform (``POST /v1/webhooks/generic/<store id>``): which JSON fields of
    its payload are the cart, contact and order, and how a request proves itself."""

    auth: Literal["hmac", "bearer"] = Field(
        "hmac", description="hmac: HMAC-SHA256 of the raw body; bearer: Authorization: Bearer"
    )
    secret: str = Field(min_length=16, max_length=256)
    signature_header: str = Field("X-Signature", pattern=r"^[A-Za-z0-9-]{1,64}$")
    signature_encoding: Literal["hex", "base64"] = "hex"
    id: JsonPath | None = Field(None, description="the delivery's id; else id_header")
    id_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,64}$", description="else the raw body's SHA-256"
    )
    kind: GenericKind | None = Field(None, description="what every delivery is, or:")
    kind_path: JsonPath | None = Field(None, description="the field that says what happened")
    kinds: dict[str, GenericKind] = Field(
        default_factory=dict, description="that field's value -> cart|order|contact|cleared|ignore"
    )
    occurred_at: JsonPath | None = Field(None, description="ISO 8601 or epoch; else now")
    amounts: Literal["major", "minor"] = Field(
        "major", description="major: 19.99 (decimal, as most platforms send); minor: 1999"
    )
    consent_source: str = Field("webhook", max_length=64)
    cart: GenericCartFields | None = None
    contact: GenericContactFields | None = None
    order: GenericOrderFields | None = None

    @model_validator(mode="after")
    def _complete(self) -> GenericWebhookSettings:
        if (self.kind is None) == (self.kind_path is None):
            raise ValueError("set exactly one of kind and kind_path")
        possible = {self.kind} if self.kind else set(self.kinds.values())
        needs = {
            "cart": ("cart", self.cart),
            "cleared": ("cart", self.cart),
            "order": ("order", self.order),
            "contact": ("contact", self.contact),
        }
        for kind, (name, fields) in needs.items():
            if kind in possible and fields is None:
                raise ValueError(f"deliveries of kind {kind!r} need the {name!r} paths")
        if "cart" in possible and self.cart is not None and self.cart.items is None:
            raise ValueError("deliveries of kind 'cart' need cart.items")
        return self


class PlatformSettings(_Settings):
    """Store platforms that send their own webhooks (see ``cartback connect``)."""

    shopify: ShopifySettings | None = None
    woocommerce: WooCommerceSettings | None = None
    generic: GenericWebhookSettings | None = None


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
# A CSS selector the snippet watches (document.querySelectorAll), e.g. 'input[name="email"]'.
Selector = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^<>]+$")]


class SnippetPrompt(_Settings):
    """One on-site prompt: what it offers and when it may show."""

    enabled: bool = True
    offer: Literal["send_cart", "price_watch", "coupon"] = "send_cart"
    # exit intent: how long the shopper must have been on the page first; timed: when to show
    delay_seconds: int = Field(30, ge=0, le=3600)


class SnippetPrompts(_Settings):
    exit_intent: SnippetPrompt | None = None
    timed: SnippetPrompt | None = None


class SnippetCapture(_Settings):
    """Which fields of the store's pages the snippet reads the shopper's email and phone from."""

    email: list[Selector] = Field(default_factory=lambda: ['input[type="email"]'], max_length=20)
    phone: list[Selector] = Field(default_factory=lambda: ['input[type="tel"]'], max_length=20)
    consent_checkbox: Selector | None = Field(
        None, description="the checkbox that grants consent; EU mode captures only once ticked"
    )
    consent_text: str = Field(
        "Send me a reminder of my cart and offers by email or SMS. I can unsubscribe at any time.",
        min_length=1,
        max_length=2000,
        description="the consent text shown beside the checkbox (kept as the consent's proof)",
    )


class SnippetSettings(_Settings):
    """The browser snippet (``/v1/collect``): where it may run, what it captures, its prompts."""

    origins: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="the CORS allowlist, e.g. ['https://shop.example.com']; empty: the origin "
        "of the store's url",
    )
    # eu: email and phone are kept only with consent for that channel (the checkbox)
    consent_mode: Literal["default", "eu"] = "default"
    capture: SnippetCapture = Field(default_factory=SnippetCapture)
    prompts: SnippetPrompts = Field(default_factory=SnippetPrompts)
    texts: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")], str] = Field(
        default_factory=dict, max_length=50, description="overrides of the prompts' built-in words"
    )
    price_watch_days: int = Field(14, ge=1, le=365)
    rate_per_ip: int = Field(60, ge=1, le=100_000, description="requests per minute per IP")
    rate_per_store: int = Field(600, ge=1, le=1_000_000, description="requests per minute")
    # more cart updates than this within one second from one visitor is a bot
    max_cart_updates_per_second: int = Field(10, ge=1, le=1000)

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        cleaned = [origin.strip().rstrip("/").lower() for origin in value]
        for origin in cleaned:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin such as https://shop.example.com (scheme and "
                    "host, no path)"
                )
        return list(dict.fromkeys(cleaned))

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, str]) -> dict[str, str]:
        if any(len(text) > 500 for text in value.values()):
            raise ValueError("a text is at most 500 characters")
        return value


class StoreSettings(_Settings):
    """A store's settings, kept as JSON on the store row; every field has a sane default."""

    locale: str = "en"
    currency: str = Field("USD", min_length=3, max_length=3)
    timezone: str = "UTC"
    country: str | None = Field(None, description="for phone numbers without +, e.g. US")
    url: str = "https://shop.example.com"
    sender_email: str = "shop@example.com"
    sender_name: str | None = None
    support_email: str | None = None
    address: str = "Your store's postal address (set it in the store settings)"
    abandon_after: str = "30m"
    attribution_window: str = "5d"
    smtp_url: str | None = None
    utm_source: str = "cartback"
    utm_medium: str = "email"
    channels: ChannelSettings = Field(default_factory=ChannelSettings)
    policy: ContactPolicy = Field(default_factory=ContactPolicy)
    costs: Costs = Field(default_factory=Costs)
    platforms: PlatformSettings = Field(default_factory=PlatformSettings)
    snippet: SnippetSettings = Field(default_factory=SnippetSettings)

    @field_validator("country")
    @classmethod
    def _valid_country(cls, value: str | None) -> str | None:
        return _country(value)

    @field_validator("abandon_after", "attribution_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("sender_email", "support_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or any(c in value for c in "\r\n <>")):
            raise ValueError("must be an email address")
        return value

    @property
    def abandon_delay(self) -> timedelta:
        return parse_duration(self.abandon_after)

    @property
    def attribution(self) -> timedelta:
        return parse_duration(self.attribution_window)

    def redacted(self) -> dict[str, Any]:
        """The settings as JSON with every credential replaced by ``<redacted>``."""
        redacted: dict[str, Any] = _redact(self.model_dump(mode="json"))
        return redacted


_SECRET_KEYS = frozenset(
    {
        "auth_token",
        "access_token",
        "app_secret",
        "verify_token",
        "bot_token",
        "webhook_secret",
        "previous_webhook_secret",
        "vapid_private_key",
        "private_key",
        "secret",
        "auth_value",
        "smtp_url",
    }
)


def _redact(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_REDACTED if k in _SECRET_KEYS and v is not None else _redact(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_redact(v) for v in node]
    return node
