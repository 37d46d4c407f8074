from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from cartback.contacts.phones import PhoneKind, PhoneResult, normalize_phone

MARKETS = ("KZ", "RU", "UZ", "IR", "LT", "US")


def example_e164(region: str, kind: int) -> str:
    """An example number from phonenumbers' own metadata, so no test guesses a range."""
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def example_national(region: str, kind: int) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)


def sms(e164: str, country: str, kind: PhoneKind = "mobile") -> PhoneResult:
    return PhoneResult(e164=e164, kind=kind, country=country, sms_ok=True)


def no_sms(e164: str | None, country: str | None, kind: PhoneKind) -> PhoneResult:
    return PhoneResult(e164=e164, kind=kind, country=country, sms_ok=False)


INVALID = no_sms(None, None, "invalid")


# --- our markets -------------------------------------------------------------


def test_kazakhstan_mobile_international_format() -> None:
    assert normalize_phone("+7 701 234 56 78", country=None) == sms("+77012345678", "KZ")


def test_kazakhstan_mobile_national_format_with_trunk_prefix_8() -> None:
    assert normalize_phone("8 (701) 234-56-78", country="KZ") == sms("+77012345678", "KZ")


def test_kazakhstan_shares_plus_7_with_russia_but_keeps_its_region() -> None:
    assert normalize_phone("+77012345678", country="RU") == sms("+77012345678", "KZ")


def test_russia_mobile_9xx() -> None:
    e164 = example_e164("RU", PhoneNumberType.MOBILE)
    assert e164.startswith("+79")

    assert normalize_phone(e164, country="RU") == sms(e164, "RU")


def test_russia_mobile_national_format() -> None:
    assert normalize_phone("8 912 345-67-89", country="RU") == sms("+79123456789", "RU")


def test_russia_moscow_landline_495_is_never_sms() -> None:
    assert normalize_phone("+7 495 123-45-67", country="RU") == no_sms(
        "+74951234567", "RU", "landline"
    )


def test_uzbekistan_mobile_9x() -> None:
    e164 = example_e164("UZ", PhoneNumberType.MOBILE)
    assert e164.startswith("+9989")

    assert normalize_phone(e164, country=None) == sms(e164, "UZ")
    assert normalize_phone("+998 91 234 56 78", country="UZ") == sms("+998912345678", "UZ")


def test_iran_mobile_9xx() -> None:
    e164 = example_e164("IR", PhoneNumberType.MOBILE)
    assert e164.startswith("+989")

    assert normalize_phone(e164, country="IR") == sms(e164, "IR")
    assert normalize_phone("0912 345 6789", country="IR") == sms("+989123456789", "IR")


def test_iran_number_written_in_persian_digits() -> None:
    assert normalize_phone("۰۹۱۲ ۳۴۵ ۶۷۸۹", country="IR") == sms("+989123456789", "IR")


def test_iran_tehran_landline_21_is_never_sms() -> None:
    assert normalize_phone("+98 21 1234 5678", country="IR") == no_sms(
        "+982112345678", "IR", "landline"
    )


def test_lithuania_mobile_6xx() -> None:
    e164 = example_e164("LT", PhoneNumberType.MOBILE)
    assert e164.startswith("+3706")

    assert normalize_phone(e164, country="LT") == sms(e164, "LT")
    assert normalize_phone("8 612 34567", country="LT") == sms("+37061234567", "LT")


def test_lithuania_vilnius_landline_5_is_never_sms() -> None:
    assert normalize_phone("+370 5 212 3456", country="LT") == no_sms(
        "+37052123456", "LT", "landline"
    )


def test_us_numbers_are_fixed_line_or_mobile_and_may_receive_sms() -> None:
    e164 = example_e164("US", PhoneNumberType.MOBILE)

    assert normalize_phone(e164, country="US") == sms(e164, "US", "fixed_line_or_mobile")
    assert normalize_phone("(415) 555-2671", country="US") == sms(
        "+14155552671", "US", "fixed_line_or_mobile"
    )


@pytest.mark.parametrize("region", MARKETS)
def test_every_market_example_mobile_in_national_format_is_sms_ok(region: str) -> None:
    national = example_national(region, PhoneNumberType.MOBILE)

    result = normalize_phone(national, country=region)

    assert result.e164 == example_e164(region, PhoneNumberType.MOBILE)
    assert result.country == region
    assert result.sms_ok is True


@pytest.mark.parametrize("region", ["KZ", "RU", "IR", "LT"])
def test_every_market_example_landline_is_not_sms_ok(region: str) -> None:
    e164 = example_e164(region, PhoneNumberType.FIXED_LINE)

    assert normalize_phone(e164, country=None) == no_sms(e164, region, "landline")


def test_voip_is_not_sms_ok() -> None:
    e164 = example_e164("LT", PhoneNumberType.VOIP)

    assert normalize_phone(e164, country=None) == no_sms(e164, "LT", "voip")


def test_non_geographic_number_has_no_country_and_is_not_sms_ok() -> None:
    assert normalize_phone("+800 1234 5678", country="US") == no_sms(
        "+80012345678", None, "unknown"
    )


# --- formats and default country ---------------------------------------------


def test_netherlands_national_format_with_default_country() -> None:
    assert normalize_phone("0612345678", country="NL") == sms("+31612345678", "NL")


def test_national_format_without_default_country_is_invalid() -> None:
    assert normalize_phone("0612345678", country=None) == INVALID


def test_default_country_is_case_insensitive() -> None:
    assert normalize_phone("8 (701) 234-56-78", country=" kz ") == sms("+77012345678", "KZ")


def test_unknown_default_country_is_ignored() -> None:
    assert normalize_phone("0612345678", country="XX") == INVALID
    assert normalize_phone("+31 6 12345678", country="XX") == sms("+31612345678", "NL")


def test_plus_wins_over_a_different_default_country() -> None:
    assert normalize_phone("+31 6 12345678", country="KZ") == sms("+31612345678", "NL")


@pytest.mark.parametrize("country", [None, "LT", "US", "KZ", "RU"])
def test_double_zero_international_prefix_is_read_as_plus(country: str | None) -> None:
    # The US dials out with 011 and Kazakhstan/Russia with 810, yet "00" is what
    # most shoppers type.
    assert normalize_phone("00370 612 34567", country=country) == sms("+37061234567", "LT")


@pytest.mark.parametrize(
    "raw",
    [
        "(201) 555-0123 ext. 12",
        "(201) 555-0123 x12",
        "(201) 555-0123 #12",
        "tel:+1-201-555-0123;ext=12",
        "phone: (201) 555-0123",
    ],
)
def test_extension_and_surrounding_text_are_dropped(raw: str) -> None:
    assert normalize_phone(raw, country="US") == sms("+12015550123", "US", "fixed_line_or_mobile")


def test_trailing_note_is_not_read_as_vanity_digits() -> None:
    assert normalize_phone("+7 701 234 56 78 (mobile)", country=None) == sms("+77012345678", "KZ")
    assert normalize_phone("+7 701 234 56 78 доб. 5", country=None) == sms("+77012345678", "KZ")


def test_full_width_digits_and_plus() -> None:
    assert normalize_phone("＋７ ７０１ ２３４ ５６ ７８", country=None) == sms(
        "+77012345678", "KZ"
    )


# --- bad input: never raises, never sendable ---------------------------------


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("", "US"),
        ("   ", "US"),
        ("\t\n", None),
        ("n/a", "US"),
        ("call me", "KZ"),
        ("1-800-FLOWERS", "US"),  # vanity letters are not digits we can text
        ("+", None),
        ("12", "US"),  # too short
        ("+7 701", None),  # too short
        ("+7 701 234 56 78 90 12", None),  # too long
        ("+1 555 555 5555", None),  # not a valid range
        ("+999 123 456 789", None),  # no such country code
        ("9" * 300, "US"),  # longer than phonenumbers parses
    ],
)
def test_bad_input_is_invalid(raw: str, country: str | None) -> None:
    assert normalize_phone(raw, country=country) == INVALID


# --- properties --------------------------------------------------------------

phone_like = st.text(alphabet="0123456789 +-()./x", max_size=24)
digits = st.text(alphabet="0123456789", min_size=6, max_size=13)


def _formatted_examples() -> list[tuple[str, str]]:
    """Every region's example mobile and landline, written the ways people write them."""
    found: list[tuple[str, str]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL):
                found.append((phonenumbers.format_number(number, fmt), region))
    return found


examples = st.sampled_from(_formatted_examples())
regions = st.one_of(st.none(), st.sampled_from((*MARKETS, "NL", "GB", "DE", "FR", "xx", "")))


@settings(max_examples=500)
@given(
    raw=st.one_of(
        st.text(),
        phone_like,
        digits,
        digits.map(lambda d: "+" + d),
        digits.map(lambda d: "00" + d),
        digits.map(lambda d: "8" + d),
    ),
    country=regions,
)
def test_never_raises_and_e164_is_a_fixed_point(raw: str, country: str | None) -> None:
    result = normalize_phone(raw, country=country)

    if result.e164 is None:
        assert result == INVALID
    else:
        assert result.kind != "invalid"
        assert result.sms_ok == (result.kind in ("mobile", "fixed_line_or_mobile"))
        assert normalize_phone(result.e164, country=country) == result
        assert normalize_phone(result.e164, country=None) == result


@settings(max_examples=500)
@given(example=examples)
def test_every_regions_example_in_its_own_national_format_is_a_fixed_point(
    example: tuple[str, str],
) -> None:
    raw, region = example

    result = normalize_phone(raw, country=region)

    assert result.e164 is not None
    assert normalize_phone(result.e164, country=None) == result
