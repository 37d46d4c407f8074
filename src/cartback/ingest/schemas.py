"""What a store may send to ``POST /v1/events``.

One event, a JSON array of events, or ``{"events": [...]}`` (at most 1,000). Every event
has an ``id`` (deduplicated per store) and an ``occurred_at`` with a timezone::

    {"id": "evt_1", "type": "cart.updated", "occurred_at": "2026-01-05T09:00:00Z",
     "cart": {"id": "c_1", "currency": "EUR", "restore_url": "https://shop/cart/c_1",
              "items": [{"sku": "TEE-1", "name": "T-shirt", "unit_price": 1999, "quantity": 2,
                         "url": "https://shop/p/tee", "image_url": "https://shop/i/tee.jpg"}]},
     "contact": {"email": "ann@example.com", "first_name": "Ann"}}
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

MAX_BATCH = 1000
MAX_BODY_BYTES = 1024 * 1024
# A cart's value is summed into a BIGINT column and into KPIs; 10^15 minor units is far
# beyond any real cart and keeps every sum well inside 64 bits.
MAX_CART_VALUE = 10**15

_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']{2,}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
Currency = Annotated[str, Field(pattern=_CURRENCY.pattern, description="ISO 4217, e.g. EUR")]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Url = Annotated[str, Field(max_length=2048, pattern=r"^https?://")]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text and JSONB cannot hold U+0000; refuse it here as a 422 rather
        # than fail the insert with a 500 (and SQLite would store what PostgreSQL can't).
        if _has_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


class Item(Strict):
    sku: Id
    name: str = Field(min_length=1, max_length=500)
    unit_price: int = Field(ge=0, le=10**12, description="minor units, e.g. cents")
    quantity: int = Field(ge=1, le=100_000)
    url: Url | None = None
    image_url: Url | None = None
    variant: str | None = Field(None, max_length=200)


class ConsentProof(Strict):
    ip: str | None = Field(None, max_length=64)
    user_agent: str | None = Field(None, max_length=500)
    text: str | None = Field(None, max_length=2000, description="the consent text shown")


class ContactIn(Strict):
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)
    first_name: str | None = Field(None, max_length=100)
    locale: str | None = Field(
        None, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
    )
    timezone: str | None = Field(None, max_length=64)
    external_id: str | None = Field(None, max_length=200)
    country: str | None = Field(
        None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2, e.g. LT"
    )
    consent: dict[Literal["email", "sms", "whatsapp", "telegram", "push"], bool] | None = Field(
        None, description="channel -> granted (true) or withdrawn (false)"
    )
    consent_source: str = Field("api", max_length=64)
    consent_proof: ConsentProof | None = Field(
        None, description="what the shopper saw and where: kept on the consent ledger"
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone such as Europe/Vilnius") from None
        return value


class CartRef(Strict):
    id: Id


class CartSnapshot(Strict):
    id: Id
    currency: Currency
    items: list[Item] = Field(max_length=500)
    restore_url: Url | None = None

    @field_validator("items")
    @classmethod
    def _bounded_value(cls, items: list[Item]) -> list[Item]:
        if sum(i.unit_price * i.quantity for i in items) > MAX_CART_VALUE:
            raise ValueError(f"the cart's value is over {MAX_CART_VALUE} minor units")
        return items


class OrderIn(Strict):
    id: Id
    cart_id: Id | None = None
    total: int = Field(ge=0, le=10**13, description="minor units")
    currency: Currency
    discount_codes: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )


class _Base(Strict):
    id: Id
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _representable_in_utc(cls, value: datetime) -> datetime:
        # 9999-12-31T23:59:59-14:00 is valid ISO 8601 but has no UTC datetime; stored
        # times are UTC, so such a moment must be refused here, not crash the insert.
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
        if not 1970 <= utc.year <= 9998:
            raise ValueError("must be between 1970 and 9998") from None
        return value


class CartUpdated(_Base):
    type: Literal["cart.updated"]
    cart: CartSnapshot
    contact: ContactIn | None = None


class CheckoutStarted(_Base):
    type: Literal["checkout.started"]
    cart: CartRef
    contact: ContactIn | None = None


class ContactIdentified(_Base):
    type: Literal["contact.identified"]
    contact: ContactIn
    cart: CartRef | None = None


class OrderPlaced(_Base):
    type: Literal["order.placed"]
    order: OrderIn
    contact: ContactIn | None = None


class CartCleared(_Base):
    type: Literal["cart.cleared"]
    cart: CartRef


class OrderRef(Strict):
    id: Id


class OrderFulfilled(_Base):
    """The store shipped (fulfilled) an order: its buyer may get cart reminders again."""

    type: Literal["order.fulfilled"]
    order: OrderRef


class MessageSentExternal(_Base):
    """The store sent this contact a newsletter or campaign itself: today's reminder
    moves to the next day."""

    type: Literal["message.sent_external"]
    contact: ContactIn
    channel: Literal["email", "sms", "whatsapp", "telegram", "push"] = "email"
    campaign: str | None = Field(None, max_length=200)


EventIn = Annotated[
    CartUpdated
    | CheckoutStarted
    | ContactIdentified
    | OrderPlaced
    | CartCleared
    | OrderFulfilled
    | MessageSentExternal,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "cart.updated",
    "checkout.started",
    "contact.identified",
    "order.placed",
    "cart.cleared",
    "order.fulfilled",
    "message.sent_external",
)


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


event_adapter: TypeAdapter[EventIn] = TypeAdapter(EventIn)
batch_adapter: TypeAdapter[list[EventIn]] = TypeAdapter(
    Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]
)


class EventResult(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


class IngestResponse(BaseModel):
    accepted: int
    duplicates: int
    results: list[EventResult]
