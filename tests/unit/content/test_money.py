from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from cartback.content import build_items, format_money, items_total_minor, minor_to_decimal


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1250, "USD", "en", "$12.50"),
        (1250, "EUR", "lt", "12,50\xa0€"),
        (1250000, "RUB", "ru", "12\xa0500,00\xa0₽"),
        (1250000, "KZT", "kk", "12\xa0500,00\xa0₸"),
        (1250, "JPY", "en", "¥1,250"),
        (1250, "KWD", "en", "KWD1.250"),
        (-99, "usd", "en", "-$0.99"),
    ],
)
def test_format_money(amount: int, currency: str, locale: str, expected: str) -> None:
    assert format_money(amount, currency, locale) == expected


def test_minor_units_use_the_currency_exponent() -> None:
    assert minor_to_decimal(1250, "EUR") == Decimal("12.50")
    assert minor_to_decimal(1250, "JPY") == Decimal("1250")
    assert minor_to_decimal(1250, "KWD") == Decimal("1.250")


@pytest.mark.parametrize("amount", [12.5, True, "1250"])
def test_format_money_refuses_anything_but_int(amount: object) -> None:
    with pytest.raises(TypeError):
        format_money(amount, "USD", "en")  # type: ignore[arg-type]


def test_build_items_from_mappings_and_objects() -> None:
    raw = [
        {
            "sku": "A1",
            "name": "Linen shirt",
            "url": "https://shop.example.com/p/a1",
            "image_url": "https://cdn.example.com/a1.jpg",
            "unit_price": 1250,
            "quantity": 2,
            "variant": "Blue / M",
        },
        SimpleNamespace(
            sku="B2",
            name="Mug",
            url="https://shop.example.com/p/b2",
            image_url=None,
            unit_price=700,
            quantity=1,
        ),
    ]

    items = build_items(raw, "EUR", "lt")

    assert [(i.name, i.quantity, i.unit_price, i.line_total, i.variant) for i in items] == [
        ("Linen shirt", 2, "12,50\xa0€", "25,00\xa0€", "Blue / M"),
        ("Mug", 1, "7,00\xa0€", "7,00\xa0€", None),
    ]
    assert items[1].image_url is None
    assert items_total_minor(raw) == 3200


def test_build_items_refuses_a_float_price() -> None:
    raw = [{"name": "x", "url": "u", "image_url": None, "unit_price": 12.5, "quantity": 1}]

    with pytest.raises(ValueError, match="unit_price"):
        build_items(raw, "USD", "en")
