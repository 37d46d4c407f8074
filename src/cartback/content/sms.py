"""How long an SMS is: its encoding (GSM-7 or UCS-2) and the segments a provider bills.

A text is sent in GSM-7 when every character is in the GSM 03.38 default alphabet or
its extension table (3GPP TS 23.038 §6.2.1), else in UCS-2: one character outside
GSM-7 switches the whole message. Only the basic tables are used, as Twilio's
calculator does: no national language shift tables (Turkish, Spanish, Portuguese,
Indian scripts), so Kazakh, Russian, Persian and Lithuanian text is always UCS-2.

Counting:

- ``characters`` are Unicode code points (``len(text)``): what a person counts for
  ordinary text. A grapheme made of several code points counts each of them (a flag
  is 2, 👍🏽 is 2, a ZWJ family is several); ``"\\r\\n"`` is 2.
- ``units`` are what the limits are counted in: septets in GSM-7, where an extension
  character (``€ [ ] { } ^ | ~ \\`` and form feed) costs 2 (ESC + code); UTF-16 code
  units in UCS-2, where a character outside the BMP (most emoji) costs 2 (a surrogate
  pair).
- A message of at most 160 septets / 70 UTF-16 units is one segment. A longer one is
  sent as parts of at most 153 / 67 (each part gives 6 octets to the concatenation
  header), filled in order. An escape pair or a surrogate pair is never split across
  parts, so a part may end one unit short and a message can take more segments than
  ``ceil(units / 153)``. Parts are cut between code points, not graphemes (Twilio's
  calculator also keeps a ZWJ sequence or a flag whole, so near a boundary it can
  count one segment more for such text).

Worked example:

>>> encode_info("Hi {name}, your cart is waiting")
SmsInfo(encoding='GSM-7', characters=31, units=33, segments=1, per_segment=160, remaining=127)
>>> encode_info("Ваша корзина ждёт 🛒")
SmsInfo(encoding='UCS-2', characters=19, units=20, segments=1, per_segment=70, remaining=50)
>>> info = encode_info("a" * 152 + "€" * 77)  # 306 septets: naively 2 parts of 153
>>> info.units, info.segments, info.remaining
(306, 3, 151)
>>> [len(part) for part in segments("a" * 152 + "€" * 77)]  # "€" never split
[152, 76, 1]

Pure: no I/O, and the tables below are literals generated from
``shared/samples/gsm0338_charset.json`` (a test checks they still agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_SINGLE: Final = 160
GSM7_PER_PART: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PER_PART: Final = 67

# GSM 03.38 code -> character. The default alphabet's 0x1B is the escape to the
# extension table, not a character, so it is absent here.
GSM7_BASIC: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x00: "@",  # COMMERCIAL AT
        0x01: "£",  # POUND SIGN
        0x02: "$",  # DOLLAR SIGN
        0x03: "¥",  # YEN SIGN
        0x04: "è",  # LATIN SMALL LETTER E WITH GRAVE
        0x05: "é",  # LATIN SMALL LETTER E WITH ACUTE
        0x06: "ù",  # LATIN SMALL LETTER U WITH GRAVE
        0x07: "ì",  # LATIN SMALL LETTER I WITH GRAVE
        0x08: "ò",  # LATIN SMALL LETTER O WITH GRAVE
        0x09: "Ç",  # LATIN CAPITAL LETTER C WITH CEDILLA
        0x0A: "\n",  # LINE FEED
        0x0B: "Ø",  # LATIN CAPITAL LETTER O WITH STROKE
        0x0C: "ø",  # LATIN SMALL LETTER O WITH STROKE
        0x0D: "\r",  # CARRIAGE RETURN
        0x0E: "Å",  # LATIN CAPITAL LETTER A WITH RING ABOVE
        0x0F: "å",  # LATIN SMALL LETTER A WITH RING ABOVE
        0x10: "Δ",  # GREEK CAPITAL LETTER DELTA
        0x11: "_",  # LOW LINE
        0x12: "Φ",  # GREEK CAPITAL LETTER PHI
        0x13: "Γ",  # GREEK CAPITAL LETTER GAMMA
        0x14: "Λ",  # GREEK CAPITAL LETTER LAMDA
        0x15: "Ω",  # GREEK CAPITAL LETTER OMEGA
        0x16: "Π",  # GREEK CAPITAL LETTER PI
        0x17: "Ψ",  # GREEK CAPITAL LETTER PSI
        0x18: "Σ",  # GREEK CAPITAL LETTER SIGMA
        0x19: "Θ",  # GREEK CAPITAL LETTER THETA
        0x1A: "Ξ",  # GREEK CAPITAL LETTER XI
        0x1C: "Æ",  # LATIN CAPITAL LETTER AE
        0x1D: "æ",  # LATIN SMALL LETTER AE
        0x1E: "ß",  # LATIN SMALL LETTER SHARP S
        0x1F: "É",  # LATIN CAPITAL LETTER E WITH ACUTE
        0x20: " ",  # SPACE
        0x21: "!",  # EXCLAMATION MARK
        0x22: '"',  # QUOTATION MARK
        0x23: "#",  # NUMBER SIGN
        0x24: "¤",  # CURRENCY SIGN
        0x25: "%",  # PERCENT SIGN
        0x26: "&",  # AMPERSAND
        0x27: "'",  # APOSTROPHE
        0x28: "(",  # LEFT PARENTHESIS
        0x29: ")",  # RIGHT PARENTHESIS
        0x2A: "*",  # ASTERISK
        0x2B: "+",  # PLUS SIGN
        0x2C: ",",  # COMMA
        0x2D: "-",  # HYPHEN-MINUS
        0x2E: ".",  # FULL STOP
        0x2F: "/",  # SOLIDUS
        0x30: "0",  # DIGIT ZERO
        0x31: "1",  # DIGIT ONE
        0x32: "2",  # DIGIT TWO
        0x33: "3",  # DIGIT THREE
        0x34: "4",  # DIGIT FOUR
        0x35: "5",  # DIGIT FIVE
        0x36: "6",  # DIGIT SIX
        0x37: "7",  # DIGIT SEVEN
        0x38: "8",  # DIGIT EIGHT
        0x39: "9",  # DIGIT NINE
        0x3A: ":",  # COLON
        0x3B: ";",  # SEMICOLON
        0x3C: "<",  # LESS-THAN SIGN
        0x3D: "=",  # EQUALS SIGN
        0x3E: ">",  # GREATER-THAN SIGN
        0x3F: "?",  # QUESTION MARK
        0x40: "¡",  # INVERTED EXCLAMATION MARK
        0x41: "A",  # LATIN CAPITAL LETTER A
        0x42: "B",  # LATIN CAPITAL LETTER B
        0x43: "C",  # LATIN CAPITAL LETTER C
        0x44: "D",  # LATIN CAPITAL LETTER D
        0x45: "E",  # LATIN CAPITAL LETTER E
        0x46: "F",  # LATIN CAPITAL LETTER F
        0x47: "G",  # LATIN CAPITAL LETTER G
        0x48: "H",  # LATIN CAPITAL LETTER H
        0x49: "I",  # LATIN CAPITAL LETTER I
        0x4A: "J",  # LATIN CAPITAL LETTER J
        0x4B: "K",  # LATIN CAPITAL LETTER K
        0x4C: "L",  # LATIN CAPITAL LETTER L
        0x4D: "M",  # LATIN CAPITAL LETTER M
        0x4E: "N",  # LATIN CAPITAL LETTER N
        0x4F: "O",  # LATIN CAPITAL LETTER O
        0x50: "P",  # LATIN CAPITAL LETTER P
        0x51: "Q",  # LATIN CAPITAL LETTER Q
        0x52: "R",  # LATIN CAPITAL LETTER R
        0x53: "S",  # LATIN CAPITAL LETTER S
        0x54: "T",  # LATIN CAPITAL LETTER T
        0x55: "U",  # LATIN CAPITAL LETTER U
        0x56: "V",  # LATIN CAPITAL LETTER V
        0x57: "W",  # LATIN CAPITAL LETTER W
        0x58: "X",  # LATIN CAPITAL LETTER X
        0x59: "Y",  # LATIN CAPITAL LETTER Y
        0x5A: "Z",  # LATIN CAPITAL LETTER Z
        0x5B: "Ä",  # LATIN CAPITAL LETTER A WITH DIAERESIS
        0x5C: "Ö",  # LATIN CAPITAL LETTER O WITH DIAERESIS
        0x5D: "Ñ",  # LATIN CAPITAL LETTER N WITH TILDE
        0x5E: "Ü",  # LATIN CAPITAL LETTER U WITH DIAERESIS
        0x5F: "§",  # SECTION SIGN
        0x60: "¿",  # INVERTED QUESTION MARK
        0x61: "a",  # LATIN SMALL LETTER A
        0x62: "b",  # LATIN SMALL LETTER B
        0x63: "c",  # LATIN SMALL LETTER C
        0x64: "d",  # LATIN SMALL LETTER D
        0x65: "e",  # LATIN SMALL LETTER E
        0x66: "f",  # LATIN SMALL LETTER F
        0x67: "g",  # LATIN SMALL LETTER G
        0x68: "h",  # LATIN SMALL LETTER H
        0x69: "i",  # LATIN SMALL LETTER I
        0x6A: "j",  # LATIN SMALL LETTER J
        0x6B: "k",  # LATIN SMALL LETTER K
        0x6C: "l",  # LATIN SMALL LETTER L
        0x6D: "m",  # LATIN SMALL LETTER M
        0x6E: "n",  # LATIN SMALL LETTER N
        0x6F: "o",  # LATIN SMALL LETTER O
        0x70: "p",  # LATIN SMALL LETTER P
        0x71: "q",  # LATIN SMALL LETTER Q
        0x72: "r",  # LATIN SMALL LETTER R
        0x73: "s",  # LATIN SMALL LETTER S
        0x74: "t",  # LATIN SMALL LETTER T
        0x75: "u",  # LATIN SMALL LETTER U
        0x76: "v",  # LATIN SMALL LETTER V
        0x77: "w",  # LATIN SMALL LETTER W
        0x78: "x",  # LATIN SMALL LETTER X
        0x79: "y",  # LATIN SMALL LETTER Y
        0x7A: "z",  # LATIN SMALL LETTER Z
        0x7B: "ä",  # LATIN SMALL LETTER A WITH DIAERESIS
        0x7C: "ö",  # LATIN SMALL LETTER O WITH DIAERESIS
        0x7D: "ñ",  # LATIN SMALL LETTER N WITH TILDE
        0x7E: "ü",  # LATIN SMALL LETTER U WITH DIAERESIS
        0x7F: "à",  # LATIN SMALL LETTER A WITH GRAVE
    }
)
GSM7_EXTENSION: Final[Mapping[int, str]] = MappingProxyType(
    {
        0x0A: "\x0c",  # FORM FEED (page break)
        0x14: "^",  # CIRCUMFLEX ACCENT
        0x28: "{",  # LEFT CURLY BRACKET
        0x29: "}",  # RIGHT CURLY BRACKET
        0x2F: "\\",  # REVERSE SOLIDUS
        0x3C: "[",  # LEFT SQUARE BRACKET
        0x3D: "~",  # TILDE
        0x3E: "]",  # RIGHT SQUARE BRACKET
        0x40: "|",  # VERTICAL LINE
        0x65: "€",  # EURO SIGN
    }
)

_BASIC_CHARS: Final = frozenset(GSM7_BASIC.values())
_EXTENSION_CHARS: Final = frozenset(GSM7_EXTENSION.values())
# encoding -> (units in a single-part message, units per part of a longer one)
_LIMITS: Final[Mapping[Encoding, tuple[int, int]]] = MappingProxyType(
    {"GSM-7": (GSM7_SINGLE, GSM7_PER_PART), "UCS-2": (UCS2_SINGLE, UCS2_PER_PART)}
)
_BMP_END: Final = 0xFFFF


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """How a text goes out as SMS; ``units`` are septets (GSM-7) or UTF-16 units (UCS-2)."""

    encoding: Encoding
    characters: int
    units: int
    segments: int
    per_segment: int
    """Units a segment holds: 160/70 for a single-part message, else 153/67."""
    remaining: int
    """Units still free in the last segment."""


def is_gsm7(char: str) -> bool:
    """Whether one character is in the GSM-7 default alphabet or its extension table."""
    return char in _BASIC_CHARS or char in _EXTENSION_CHARS


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if all(is_gsm7(char) for char in text) else "UCS-2"


def non_gsm_characters(text: str) -> list[str]:
    """The characters that force UCS-2, each once, in order of appearance."""
    return list(dict.fromkeys(char for char in text if not is_gsm7(char)))


def encode_info(text: str) -> SmsInfo:
    """Encoding, length and segment count of ``text`` (see the module's worked example)."""
    encoding = encoding_of(text)
    sizes = [size for _, size in _pack(text, encoding)]
    single, per_part = _LIMITS[encoding]
    per_segment = single if len(sizes) == 1 else per_part
    return SmsInfo(
        encoding=encoding,
        characters=len(text),
        units=sum(sizes),
        segments=len(sizes),
        per_segment=per_segment,
        remaining=per_segment - sizes[-1],
    )


def segments(text: str) -> list[str]:
    """The parts ``text`` is sent as, in order; they join back to ``text``.

    An empty text is one empty part, as it would be one (empty) message.
    """
    return [part for part, _ in _pack(text, encoding_of(text))]


def _unit_cost(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in _EXTENSION_CHARS else 1
    return 2 if ord(char) > _BMP_END else 1


def _pack(text: str, encoding: Encoding) -> list[tuple[str, int]]:
    """Greedy packing into (part, units) pairs; a code point is never split, so neither
    is an escape pair nor a surrogate pair."""
    costs = [_unit_cost(char, encoding) for char in text]
    single, per_part = _LIMITS[encoding]
    if sum(costs) <= single:
        return [(text, sum(costs))]
    parts: list[tuple[str, int]] = []
    start = size = 0
    for index, cost in enumerate(costs):
        if size + cost > per_part:
            parts.append((text[start:index], size))
            start, size = index, 0
        size += cost
    parts.append((text[start:], size))
    return parts
