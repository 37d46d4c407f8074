"""What every platform mapping shares: the body read as JSON with exact numbers, typed
readers that name the field a payload got wrong, money to minor units, and what one
delivery asks of us (:class:`Mapped`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from babel.numbers import get_currency_precision
from pydantic import BaseModel, ValidationError

from cartback.errors import BadRequest, Unprocessable
from cartback.ingest.schemas import CheckoutStarted, EventIn

M = TypeVar("M", bound=BaseModel)

# A platform's id (an order, a checkout, a customer) as we keep it: Shopify's int64 ids
# and tokens fit with room to spare; anything longer is not an id.
MAX_ID = 100
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def load_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. Integers stay exact at any size (Shopify ids pass 2^53)
    and fractions become Decimal: no amount is ever a float."""
    if not body.strip():
        raise BadRequest("The body is empty; expected the platform's JSON", code="empty_body")
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None
    if not isinstance(data, dict):
        raise Unprocessable("The body must be a JSON object", code="invalid_shape")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def hmac_sha256(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def same_base64_hmac(keys: list[str], body: bytes, given: str | None) -> bool:
    """``given`` is base64(HMAC-SHA256(key, body)) for one of ``keys`` (constant time)."""
    if not given:
        return False
    presented = given.strip().encode()
    return any(
        hmac.compare_digest(base64.b64encode(hmac_sha256(key, body)), presented) for key in keys
    )


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def link_key(platform: str, name: str, value: str) -> str:
    """The key a link is kept under, e.g. ``shopify:cart_token:eeafa27...`` (a long value
    is hashed: event ids hold 200 characters)."""
    key = f"{platform}:{name}:{value}"
    return key if len(key) <= 200 else f"{platform}:{name}:sha256:{body_digest(value.encode())}"


def ordered_key(platform: str, cart_id: str) -> str:
    """Kept once an order names this cart: a later (or late) snapshot of it is not a cart."""
    return link_key(platform, "ordered", cart_id)


@dataclass(frozen=True)
class Ref:
    """One way to name the cart an order or a deletion is about: our cart id as it is, or
    (``link``) a key under which an earlier delivery remembered the cart id."""

    value: str
    link: bool = False


@dataclass(frozen=True)
class Mapped:
    """What one delivery asks of us.

    ``event`` is applied once (its id is derived from the delivery, so a redelivery is a
    duplicate); None means the delivery is acknowledged and changes nothing (``reason``).
    For an order or a deletion, ``refs`` name its cart, best first. A cart snapshot
    remembers itself under ``links``; ``started`` marks it a checkout. ``version_key``:
    only a newer ``occurred_at`` under this key is applied (contacts have no snapshot time).
    """

    platform: str
    event: EventIn | None
    reason: str = ""
    refs: tuple[Ref, ...] = ()
    links: tuple[str, ...] = ()
    started: CheckoutStarted | None = None
    version_key: str | None = None

    @classmethod
    def ignored(cls, platform: str, reason: str) -> Mapped:
        return cls(platform, None, reason)


def build(model: type[M], data: dict[str, Any], what: str) -> M:
    """Our event model from mapped fields; a 422 naming each field it refuses."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": _dotted(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        first = errors[0]
        raise Unprocessable(
            f"{what}: {first['field']}: {first['message']}", code="invalid_payload", errors=errors
        ) from None


def _dotted(loc: tuple[Any, ...]) -> str:
    path = ""
    for piece in loc:
        path += f"[{piece}]" if isinstance(piece, int) else f"{'.' if path else ''}{piece}"
    return path or "body"


def invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", code="invalid_payload", errors=[{"field": field, "message": message}]
    )


def to_minor(amount: Decimal, currency: str, field: str) -> int:
    """``Decimal("421.88")`` USD -> ``42188``; the exponent is the currency's (JPY 0, KWD 3);
    a fraction of a minor unit is rounded half up."""
    try:
        minor = amount.scaleb(get_currency_precision(currency)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
    except InvalidOperation:
        raise invalid(field, f"{amount} is too large an amount") from None
    return int(minor)


def not_after(moment: datetime, now: datetime) -> datetime:
    """A platform's clock ahead of ours is not the future: a snapshot dated later than now
    would make every real update after it look stale."""
    return min(moment, now)


class Fields:
    """One JSON object of a payload, read field by field. A field of the wrong type is a
    422 naming it (``line_items[1].price``); a missing or null one reads as None."""

    def __init__(self, data: Any, where: str = "") -> None:
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.where = where

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def obj(self, name: str) -> Fields:
        value = self.data.get(name)
        if value is not None and not isinstance(value, dict):
            raise invalid(self.path(name), "must be an object")
        return Fields(value, self.path(name))

    def objects(self, name: str) -> list[Fields]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(self.path(name), "must be a list")
        found = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise invalid(f"{self.path(name)}[{i}]", "must be an object")
            found.append(Fields(item, f"{self.path(name)}[{i}]"))
        return found

    def text(self, name: str, limit: int | None = None) -> str | None:
        """A string (empty: None); ``limit`` cuts a long display text instead of refusing."""
        return read_text(self.data.get(name), self.path(name), limit)

    def ident(self, name: str) -> str | None:
        return read_ident(self.data.get(name), self.path(name))

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return value
        raise invalid(self.path(name), "must be true or false")

    def count(self, name: str) -> int | None:
        return read_count(self.data.get(name), self.path(name))

    def amount(self, name: str) -> Decimal | None:
        """A decimal string ("421.88") or a JSON number, never negative."""
        return parse_amount(self.data.get(name), self.path(name))

    def currency(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not _CURRENCY.match(value.upper()):
            raise invalid(self.path(name), f"{value!r} is not an ISO 4217 currency code")
        return value.upper() if value else None

    def when(self, name: str) -> datetime | None:
        """An ISO 8601 time; one without an offset is UTC (WooCommerce's ``*_gmt``)."""
        value = self.text(name)
        return None if value is None else parse_time(value, self.path(name))

    def locale(self, name: str) -> str | None:
        value = self.text(name)
        return value if value and _LOCALE.match(value) and len(value) <= 16 else None

    def country(self, name: str) -> str | None:
        value = self.text(name)
        return value.upper() if value and _COUNTRY.match(value) else None


def read_text(value: Any, field: str, limit: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    value = value.strip()
    return (value[:limit] if limit else value) or None


def read_ident(value: Any, field: str) -> str | None:
    """An id, string or integer, as an exact string (981820079255243537 stays itself);
    0 and "" read as None (WooCommerce's "no customer")."""
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(field, "must be an id (a string or an integer)")
    text = str(value).strip()
    if not 0 < len(text) <= MAX_ID or any(c < " " for c in text):
        raise invalid(field, f"must be an id of 1 to {MAX_ID} characters")
    return text


def read_count(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(field, "must be a whole number, 0 or more")
    return value


def parse_amount(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise invalid(field, 'must be an amount such as "19.99"')
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise invalid(field, f'{value!r} is not an amount such as "19.99"') from None
    if not amount.is_finite() or amount < 0:
        raise invalid(field, f"{value!r} is not an amount of 0 or more")
    return amount


def parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(field, f"{value!r} is not an ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
