"""Phone numbers normalized to E.164, and whether an SMS can reach them.

Pure: no I/O, no settings. The caller picks the default country (the contact's,
else the store's) used to read numbers written in national format.

Kinds, and which of them ``sms_ok`` allows:

- ``mobile`` — SMS ok.
- ``fixed_line_or_mobile`` — SMS ok. The number plan cannot tell mobiles from
  landlines: the whole NANP (US, Canada, ...) and some others (e.g. Uzbekistan's
  geographic ranges) are classified this way. Refusing them would mean never
  texting a US shopper, and a shopper who typed the number into a checkout that
  offers SMS almost always typed a mobile; a landline that slips through is
  refused by the provider as a permanent failure, and the step falls back to
  the next channel.
- ``landline`` — never sent to.
- ``voip`` — not sent to: many VoIP ranges cannot receive SMS and providers
  reject them; keeping them out costs little.
- ``unknown`` — a valid number that is none of the above (toll-free, premium
  rate, shared cost, personal number, pager, UAN, voicemail, or unclassified):
  not sent to.
- ``invalid`` — not a dialable number (``e164`` is None): not sent to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

__all__ = ["PhoneKind", "PhoneResult", "normalize_phone"]

PhoneKind = Literal["mobile", "fixed_line_or_mobile", "landline", "voip", "unknown", "invalid"]

_KINDS: dict[int, PhoneKind] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.VOIP: "voip",
}
_SMS_KINDS: frozenset[PhoneKind] = frozenset({"mobile", "fixed_line_or_mobile"})

# Characters that end the number itself: what follows is an extension ("ext. 12",
# "x12", "доб. 12", "#12", ";ext=12") or a note ("(mobile)"). phonenumbers would
# read trailing letters as vanity digits ("mobile" -> 662453); E.164 has no
# extension, so the tail is dropped.
_TAIL_STARTERS = frozenset("#;,")
_PLUS_SIGNS = frozenset("+\uff0b")  # ASCII and full-width plus


@dataclass(frozen=True)
class PhoneResult:
    """A normalized phone number.

    ``e164`` is None only when ``kind`` is ``"invalid"``; ``country`` is the ISO
    3166 region the number belongs to (None for invalid and non-geographic
    numbers such as +800).
    """

    e164: str | None
    kind: PhoneKind
    country: str | None
    sms_ok: bool


_INVALID = PhoneResult(e164=None, kind="invalid", country=None, sms_ok=False)


def normalize_phone(raw: str, *, country: str | None) -> PhoneResult:
    """Read a phone number as a human typed it; never raises.

    ``country`` is the default region (ISO 3166 alpha-2, any case) for numbers in
    national format; a number written with ``+`` (or ``00``) keeps its own
    country whatever the default.

    >>> normalize_phone("8 (701) 234-56-78", country="KZ")
    PhoneResult(e164='+77012345678', kind='mobile', country='KZ', sms_ok=True)
    >>> normalize_phone("+7 495 123-45-67", country="KZ").kind
    'landline'
    """
    text = _without_tail(raw)
    if not any(ch.isdecimal() for ch in text):
        return _INVALID
    region = _region(country)
    for candidate, default in _candidates(text, region):
        number = _parse(candidate, default)
        if number is not None and phonenumbers.is_valid_number(number):
            return _result(number)
    return _INVALID


def _without_tail(raw: str) -> str:
    started = False
    for i, ch in enumerate(raw):
        if not started:
            started = ch.isdecimal() or ch in _PLUS_SIGNS
        elif ch.isalpha() or ch in _TAIL_STARTERS:
            return raw[:i]
    return raw


def _region(country: str | None) -> str | None:
    region = country.strip().upper() if country else None
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _candidates(text: str, region: str | None) -> list[tuple[str, str | None]]:
    candidates: list[tuple[str, str | None]] = [(text, region)]
    stripped = text.lstrip()
    # "00" is the international prefix in most of the world (ITU-T E.164 advice),
    # but not in the default region's plan when that is e.g. the US (011) or
    # Kazakhstan (810), or when there is no default at all.
    if stripped.startswith("00"):
        candidates.append(("+" + stripped[2:], None))
    return candidates


def _parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _result(number: PhoneNumber) -> PhoneResult:
    kind = _KINDS.get(phonenumbers.number_type(number), "unknown")
    region = phonenumbers.region_code_for_number(number)
    return PhoneResult(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        kind=kind,
        # "001" marks non-geographic numbers (+800, +882, ...): no ISO 3166 region.
        country=region if region in phonenumbers.SUPPORTED_REGIONS else None,
        sms_ok=kind in _SMS_KINDS,
    )
