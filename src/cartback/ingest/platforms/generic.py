"""Any other platform (nopCommerce, Magento, PrestaShop, a shop of one's own): the store's
settings say which fields of the payload are the cart, the contact and the order
(``platforms.generic``: :class:`~cartback.stores.schemas.GenericWebhookSettings`) and how
a request proves itself — an HMAC-SHA256 of the raw body in a header, or a bearer token.
Pure: the raw body and headers in, :class:`~cartback.ingest.platforms._common.Mapped` out.

Paths are a small JSONPath: ``$`` is the body, ``.key`` a field, ``[0]`` an element and
``[*]`` every element. For example, with ``items: $.cart.lines[*]`` and the item path
``sku: $.ref``::

    >>> find({"cart": {"lines": [{"ref": "TEE-1"}, {"ref": "CAP-9"}]}}, "$.cart.lines[*].ref")
    ['TEE-1', 'CAP-9']

Amounts are decimals in major units (``"19.99"``) unless ``amounts: minor``. The event id
is ``generic:<the delivery's id>`` (from ``id``, else ``id_header``, else the body's
SHA-256), so a redelivery is a duplicate; an older cart than the one applied is stale.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from cartback.ingest.platforms._common import (
    Mapped,
    body_digest,
    build,
    hmac_sha256,
    invalid,
    load_json,
    not_after,
    parse_amount,
    parse_time,
    read_count,
    read_ident,
    read_text,
    to_minor,
)
from cartback.ingest.schemas import CartCleared, CartUpdated, ContactIdentified, OrderPlaced
from cartback.stores.schemas import (
    GenericContactFields,
    GenericItemFields,
    GenericWebhookSettings,
)

PLATFORM = "generic"
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+|\*)\]")
_TRUE = frozenset({"true", "yes", "1", "on", "y"})
_FALSE = frozenset({"false", "no", "0", "off", "n"})
Step = str | int | None  # a key, an index, or None for [*]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=512)
def compile_path(path: str) -> tuple[Step, ...]:
    """``$.cart.lines[*].ref`` -> ``("cart", "lines", None, "ref")``."""
    if not path.startswith("$"):
        raise ValueError(f"{path!r} does not start with $")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"{path!r} is not a path such as $.cart.lines[*].sku")
        key, index = match.groups()
        steps.append(key if key is not None else None if index == "*" else int(index))
        position = match.end()
    return tuple(steps)


def find(doc: Any, path: str) -> list[Any]:
    """Every value ``path`` reaches in ``doc`` (none when a step finds nothing)."""
    nodes = [doc]
    for step in compile_path(path):
        found: list[Any] = []
        for node in nodes:
            if isinstance(step, str) and isinstance(node, dict) and step in node:
                found.append(node[step])
            elif step is None and isinstance(node, list):
                found.extend(node)
            elif isinstance(step, int) and isinstance(node, list) and step < len(node):
                found.append(node[step])
        nodes = found
    return nodes


def one(doc: Any, path: str | None) -> Any:
    if path is None:
        return None
    found = find(doc, path)
    return found[0] if found else None


def verify(config: GenericWebhookSettings, body: bytes, headers: Mapping[str, str]) -> bool:
    """``auth: bearer``: ``Authorization: Bearer <secret>``. ``auth: hmac``: the signature
    header holds HMAC-SHA256(secret, raw body) in hex or base64 (a ``sha256=`` prefix is
    allowed). Compared in constant time."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if config.auth == "bearer":
        scheme, _, token = lowered.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), config.secret.encode()
        )
    given = lowered.get(config.signature_header.lower(), "").strip()
    if given[:7].lower() == "sha256=":
        given = given[7:]
    digest = hmac_sha256(config.secret, body)
    if config.signature_encoding == "hex":
        expected, given = digest.hex(), given.lower()
    else:
        expected = base64.b64encode(digest).decode()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def map_webhook(
    config: GenericWebhookSettings,
    body: bytes,
    headers: Mapping[str, str],
    *,
    currency: str,
    now: datetime,
) -> Mapped:
    """The payload as one of our events, by the store's field paths; ``currency`` is the
    store's, for payloads that name none."""
    doc = load_json(body)
    kind = config.kind
    if config.kind_path is not None:
        value = one(doc, config.kind_path)
        kind = config.kinds.get(_as_key(value))
        if kind is None:
            return Mapped.ignored(
                PLATFORM, f"{config.kind_path} is {value!r}, which 'kinds' does not name"
            )
    if kind == "ignore" or kind is None:
        return Mapped.ignored(PLATFORM, "'kinds' says to ignore this delivery")
    reader = _Reader(config, doc, currency)
    delivery = reader.delivery_id(headers, body)
    at = not_after(reader.time(config.occurred_at) or now, now)
    base = {"id": f"{PLATFORM}:{delivery}", "occurred_at": at}
    contact = reader.contact(config.contact) if config.contact else None
    what = f"generic webhook ({kind})"
    if kind == "cart":
        cart = build(
            CartUpdated,
            {**base, "type": "cart.updated", "cart": reader.cart(), "contact": contact},
            what,
        )
        return Mapped(PLATFORM, cart)
    if kind == "cleared":
        return Mapped(
            PLATFORM,
            build(CartCleared, {**base, "type": "cart.cleared", "cart": reader.cart_ref()}, what),
        )
    if kind == "order":
        order = build(
            OrderPlaced,
            {**base, "type": "order.placed", "order": reader.order(), "contact": contact},
            what,
        )
        return Mapped(PLATFORM, order)
    if contact is None:
        raise invalid("contact", "no email, phone or external_id found at the configured paths")
    event = build(
        ContactIdentified, {**base, "type": "contact.identified", "contact": contact}, what
    )
    return Mapped(PLATFORM, event)


def _as_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class _Reader:
    """The payload's values at the configured paths; a wrong one is a 422 naming its path.
    ``where`` is the part read, as the payload's path (a line item: ``$.cart.lines[1]``)."""

    def __init__(
        self, config: GenericWebhookSettings, doc: Any, currency: str, where: str = "$"
    ) -> None:
        self.config = config
        self.doc = doc
        self.store_currency = currency
        self.where = where

    def named(self, path: str) -> str:
        return self.where + path[1:]

    def delivery_id(self, headers: Mapping[str, str], body: bytes) -> str:
        if self.config.id is not None:
            found = self.ident(self.config.id)
            if found is None:
                raise invalid(self.config.id, "missing: the delivery's id is configured here")
            return found
        if self.config.id_header is not None:
            lowered = {k.lower(): v for k, v in headers.items()}
            found = read_ident(lowered.get(self.config.id_header.lower()), self.config.id_header)
            if found is None:
                raise invalid(self.config.id_header, "missing: the delivery's id header")
            return found
        return body_digest(body)

    def text(self, path: str | None, limit: int | None = None) -> str | None:
        if path is None:
            return None
        value = one(self.doc, path)
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            value = str(value)
        return read_text(value, self.named(path), limit)

    def ident(self, path: str | None) -> str | None:
        return None if path is None else read_ident(one(self.doc, path), self.named(path))

    def required(self, path: str) -> str:
        found = self.ident(path)
        if found is None:
            raise invalid(self.named(path), "missing")
        return found

    def time(self, path: str | None) -> datetime | None:
        value = one(self.doc, path)
        if value is None or path is None:
            return None
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            seconds = Decimal(value)
            # 10^11 seconds is the year 5138: a number that large is milliseconds
            seconds = seconds / 1000 if seconds > 10**11 else seconds
            try:
                return _EPOCH + timedelta(microseconds=int(seconds * 1_000_000))
            except (OverflowError, ArithmeticError, ValueError):
                raise invalid(path, f"{value} is not a time") from None
        if not isinstance(value, str):
            raise invalid(path, "must be an ISO 8601 time or seconds since 1970")
        return parse_time(value.strip(), path)

    def currency(self, path: str | None) -> str:
        value = self.text(path)
        return value.upper() if value else self.store_currency

    def money(self, path: str, currency: str) -> int:
        value = one(self.doc, path)
        amount = parse_amount(value, self.named(path))
        if amount is None:
            raise invalid(self.named(path), "missing")
        if self.config.amounts == "minor":
            if amount != amount.to_integral_value():
                raise invalid(self.named(path), f"{value!r} is not a whole number of minor units")
            return int(amount)
        return to_minor(amount, currency, self.named(path))

    def consent(self, path: str | None) -> bool | None:
        value = one(self.doc, path)
        if value is None or path is None:
            return None
        key = _as_key(value).strip().lower()
        if key in _TRUE or key in _FALSE:
            return key in _TRUE
        raise invalid(path, f"{value!r} is not true or false")

    def contact(self, paths: GenericContactFields) -> dict[str, Any] | None:
        found = {
            "email": self.text(paths.email),
            "phone": self.text(paths.phone),
            "first_name": self.text(paths.first_name, limit=100),
            "locale": self.text(paths.locale),
            "country": self.text(paths.country),
            "external_id": self.ident(paths.external_id),
        }
        if not (found["email"] or found["phone"] or found["external_id"]):
            return None
        consent = {
            channel: granted
            for channel, path in (("email", paths.consent_email), ("sms", paths.consent_sms))
            if (granted := self.consent(path)) is not None
        }
        return {**found, "consent": consent or None, "consent_source": self.config.consent_source}

    def cart_ref(self) -> dict[str, Any]:
        assert self.config.cart is not None  # the settings require it for this kind
        return {"id": self.required(self.config.cart.id)}

    def cart(self) -> dict[str, Any]:
        paths = self.config.cart
        assert paths is not None and paths.items is not None  # required for this kind
        currency = self.currency(paths.currency)
        lines = find(self.doc, paths.items)
        base = paths.items.removesuffix("[*]")
        if len(lines) == 1 and isinstance(lines[0], list) and base == paths.items:
            lines = lines[0]  # the path names the list itself
        items = [
            _Reader(self.config, line, currency, f"{base}[{i}]").item(paths.item, currency)
            for i, line in enumerate(lines)
        ]
        return {
            "id": self.required(paths.id),
            "currency": currency,
            "items": [item for item in items if item is not None],
            "restore_url": self.text(paths.restore_url),
        }

    def item(self, paths: GenericItemFields, currency: str) -> dict[str, Any] | None:
        if not isinstance(self.doc, dict):
            raise invalid(self.where, "must be an object")
        quantity = read_count(_whole(one(self.doc, paths.quantity)), self.named(paths.quantity))
        if not quantity:
            return None
        return {
            "sku": self.text(paths.sku) or self.required(paths.sku),
            "name": self.text(paths.name, limit=500) or self.text(paths.sku),
            "unit_price": self.money(paths.unit_price, currency),
            "quantity": quantity,
            "url": self.text(paths.url),
            "image_url": self.text(paths.image_url),
            "variant": self.text(paths.variant, limit=200),
        }

    def order(self) -> dict[str, Any]:
        paths = self.config.order
        assert paths is not None  # the settings require it for this kind
        currency = self.currency(paths.currency)
        codes = find(self.doc, paths.discount_codes) if paths.discount_codes else []
        return {
            "id": self.required(paths.id),
            "cart_id": self.ident(paths.cart_id),
            "total": self.money(paths.total, currency),
            "currency": currency,
            "discount_codes": [str(code) for code in codes if isinstance(code, str | int)],
        }


def _whole(value: Any) -> Any:
    """A quantity sent as a string ("2") reads as the number."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value
