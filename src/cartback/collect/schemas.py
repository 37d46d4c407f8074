"""What the storefront snippet sends to ``POST /v1/collect`` and reads from
``GET /v1/collect/config`` (the wire contract: docs/snippet-protocol.md).

One body, at most 16 KiB and 20 events, sent as ``text/plain`` (``navigator.sendBeacon``)
or ``application/json``::

    {"key": "cb_pk_...", "visitor": "0b8f2c9e-4a51-4d6c-9f3e-2a7d1c5b8e40",
     "events": [{"id": "5f0c...", "type": "cart.updated", "at": "2026-01-05T09:00:00Z",
                 "cart": {"currency": "EUR", "items": [{"sku": "TEE-1", "name": "T-shirt",
                                                        "unit_price": 1999, "quantity": 1}]}}]}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cartback.ingest.schemas import MAX_CART_VALUE, ContactIn, Currency, Id, Item, Strict, Url

MAX_BODY_BYTES = 16 * 1024
MAX_EVENTS = 20
VISITOR_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
EventId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="a client uuid")]
Offer = Literal["send_cart", "price_watch", "coupon"]
PromptName = Literal["exit_intent", "timed"]


class _Event(Strict):
    id: EventId
    at: AwareDatetime

    @field_validator("at")
    @classmethod
    def _representable_in_utc(cls, value: datetime) -> datetime:
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
        if not 1970 <= utc.year <= 9998:
            raise ValueError("must be between 1970 and 9998")
        return utc


class SnippetProduct(Strict):
    sku: Id
    name: str = Field(min_length=1, max_length=500)
    url: Url | None = None
    image_url: Url | None = None
    price: int = Field(ge=0, le=10**12, description="minor units, e.g. cents")
    currency: Currency


class SnippetProductViewed(_Event):
    type: Literal["product.viewed"]
    product: SnippetProduct


class SnippetCart(Strict):
    id: Id | None = Field(None, description="the platform's cart id; else v:<visitor>")
    currency: Currency
    items: list[Item] = Field(max_length=100)
    restore_url: Url | None = None

    @field_validator("items")
    @classmethod
    def _bounded_value(cls, items: list[Item]) -> list[Item]:
        if sum(i.unit_price * i.quantity for i in items) > MAX_CART_VALUE:
            raise ValueError(f"the cart's value is over {MAX_CART_VALUE} minor units")
        return items


class SnippetCartUpdated(_Event):
    type: Literal["cart.updated"]
    cart: SnippetCart


class SnippetCartRef(Strict):
    id: Id | None = None


class SnippetCheckoutStarted(_Event):
    type: Literal["checkout.started"]
    cart: SnippetCartRef = Field(default_factory=SnippetCartRef)


class SnippetConsent(Strict):
    email: bool | None = None
    sms: bool | None = None


class Capture(_Event):
    """Email and/or phone as the shopper typed them, and the consent they gave."""

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40, pattern=r"^\+?[0-9\s().\-/]+$")
    consent: SnippetConsent | None = None
    consent_text: str | None = Field(None, max_length=2000, description="the text shown")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ContactIn(email=value)
        except ValidationError:
            raise ValueError("not a valid email address") from None
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        """``+1 (555) 123-4567`` -> ``+15551234567``; read in the store's country later."""
        if value is None:
            return None
        digits = re.sub(r"\D", "", value)
        if not 6 <= len(digits) <= 15:
            raise ValueError("not a phone number: it has 6 to 15 digits")
        return ("+" if value.startswith("+") else "") + digits

    @model_validator(mode="after")
    def _something(self) -> Capture:
        if not (self.email or self.phone):
            raise ValueError("give email or phone")
        return self

    def channels(self) -> dict[str, str]:
        """The captured addresses by consent channel: ``email`` and ``sms`` (the phone)."""
        found = {"email": self.email, "sms": self.phone}
        return {channel: address for channel, address in found.items() if address}

    def consented(self, channel: str) -> bool | None:
        return getattr(self.consent, channel) if self.consent is not None else None


class SnippetContactCaptured(Capture):
    type: Literal["contact.captured"]
    source: Literal["field", "prompt"] = "field"


class SnippetPromptShown(_Event):
    type: Literal["prompt.shown"]
    prompt: PromptName
    offer: Offer


class SnippetPromptDismissed(_Event):
    type: Literal["prompt.dismissed"]
    prompt: PromptName
    offer: Offer


class SnippetPromptSubmitted(Capture):
    type: Literal["prompt.submitted"]
    prompt: PromptName
    offer: Offer


CollectEvent = Annotated[
    SnippetProductViewed
    | SnippetCartUpdated
    | SnippetCheckoutStarted
    | SnippetContactCaptured
    | SnippetPromptShown
    | SnippetPromptDismissed
    | SnippetPromptSubmitted,
    Field(discriminator="type"),
]
COLLECT_TYPES = (
    "product.viewed",
    "cart.updated",
    "checkout.started",
    "contact.captured",
    "prompt.shown",
    "prompt.dismissed",
    "prompt.submitted",
)


class CollectBody(Strict):
    key: str = Field(max_length=100)
    visitor: str = Field(pattern=VISITOR_PATTERN, description="the first-party visitor id")
    events: list[CollectEvent] = Field(min_length=1, max_length=MAX_EVENTS)
    webdriver: bool = Field(False, description="navigator.webdriver, as the browser says it")

    @field_validator("visitor")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


# --- GET /v1/collect/config ---------------------------------------------------------------


class CaptureConfig(BaseModel):
    email: list[str]
    phone: list[str]
    consent_checkbox: str | None
    consent_text: str


class PromptConfig(BaseModel):
    enabled: bool
    offer: Offer
    delay_seconds: int


class PromptsConfig(BaseModel):
    exit_intent: PromptConfig | None
    timed: PromptConfig | None


class SnippetConfig(BaseModel):
    """What the snippet needs to run on the store's pages; nothing about any shopper."""

    consent_mode: Literal["default", "eu"]
    capture: CaptureConfig
    prompts: PromptsConfig
    texts: dict[str, str]
    locale: str
