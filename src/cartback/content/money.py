"""Money for people to read: integer minor units in, a locale's currency format out."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

__all__ = ["format_money", "minor_to_decimal"]


def minor_to_decimal(amount_minor: int, currency: str) -> Decimal:
    """``1250`` EUR -> ``Decimal("12.50")``; the exponent comes from CLDR (JPY 0, KWD 3)."""
    return Decimal(amount_minor).scaleb(-get_currency_precision(currency.upper()))


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """Format an amount in minor units the way ``locale`` writes ``currency``.

    >>> format_money(1250, "USD", "en")
    '$12.50'
    >>> format_money(1250, "EUR", "lt")
    '12,50\\xa0€'
    >>> format_money(1250, "JPY", "ja")
    '￥1,250'
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int number of minor units")
    code = currency.upper()
    return format_currency(minor_to_decimal(amount_minor, code), code, locale=locale)
