"""What a template sees: plain frozen dataclasses, nothing else.

Everything here is already formatted for the reader (prices are strings in the shopper's
locale), so templates stay free of logic and of money arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cartback.content.money import format_money

__all__ = ["EmailContext", "ItemView", "StoreInfo", "build_items", "items_total_minor"]


@dataclass(frozen=True, slots=True)
class StoreInfo:
    name: str
    url: str
    support_email: str
    address: str
    logo_url: str | None = None


@dataclass(frozen=True, slots=True)
class ItemView:
    name: str
    url: str | None  # the product page; emails link items to the tracked cart instead
    image_url: str | None
    quantity: int
    unit_price: str
    line_total: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class EmailContext:
    store: StoreInfo
    first_name: str | None
    locale: str
    items: tuple[ItemView, ...]
    total: str
    item_count: int
    restore_url: str
    unsubscribe_url: str
    open_pixel_url: str
    step_index: int


def build_items(raw_items: Iterable[Any], currency: str, locale: str) -> tuple[ItemView, ...]:
    """ItemViews from cart items given as mappings or objects.

    Each item has ``name``, ``url``, ``image_url``, ``unit_price`` (int, minor units),
    ``quantity`` and optionally ``sku`` and ``variant``.
    """
    views = []
    for raw in raw_items:
        unit_price = _int_field(raw, "unit_price")
        quantity = _int_field(raw, "quantity")
        views.append(
            ItemView(
                name=str(_field(raw, "name")),
                url=_optional_str(_field(raw, "url", None)),
                image_url=_optional_str(_field(raw, "image_url", None)),
                quantity=quantity,
                unit_price=format_money(unit_price, currency, locale),
                line_total=format_money(unit_price * quantity, currency, locale),
                variant=_optional_str(_field(raw, "variant", None)),
            )
        )
    return tuple(views)


def items_total_minor(raw_items: Iterable[Any]) -> int:
    """Sum of unit_price x quantity, in minor units."""
    return sum(_int_field(raw, "unit_price") * _int_field(raw, "quantity") for raw in raw_items)


_MISSING = object()


def _field(raw: Any, name: str, default: Any = _MISSING) -> Any:
    value = raw.get(name, default) if isinstance(raw, Mapping) else getattr(raw, name, default)
    if value is _MISSING:
        raise ValueError(f"cart item has no {name!r}")
    return value


def _int_field(raw: Any, name: str) -> int:
    value = _field(raw, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"cart item {name!r} must be an int, got {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
