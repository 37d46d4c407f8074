"""Reading provider JSON without trusting its shape: every miss names its path."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from cartback.channels.inbound.errors import InvalidCallback

# JSON escapes that decode to text no database column can hold: a NUL, or half of a
# surrogate pair. Only a body that has one is walked (valid pairs are checked there).
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_SUSPECT_BYTES = re.compile(_SUSPECT.pattern.encode())


def load(body: bytes | str) -> Any:
    """Parse JSON; :class:`InvalidCallback` for an empty or broken body, or for text with a
    NUL or a lone surrogate (it could not be stored)."""
    if not body.strip():
        raise InvalidCallback("The body is empty", code="empty_body")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidCallback(f"The body is not valid JSON: {exc}", code="malformed_json") from None
    if isinstance(body, bytes):
        suspect = _SUSPECT_BYTES.search(body) is not None
    else:
        suspect = _SUSPECT.search(body) is not None
    if suspect:
        _check_text(data)
    return data


def storable(text: str) -> bool:
    """Whether a database text column can hold ``text`` (no NUL, valid Unicode)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _check_text(key)
            _check_text(value)
    elif isinstance(node, list):
        for value in node:
            _check_text(value)
    elif isinstance(node, str) and not storable(node):
        raise InvalidCallback(
            "The body has text with a NUL or a lone surrogate", code="malformed_json"
        )


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCallback(f"{path} must be a JSON object", code="invalid_field")
    return value


def array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidCallback(f"{path} must be a JSON array", code="invalid_field")
    return value


def text(data: dict[str, Any], key: str, path: str) -> str:
    """A required, non-empty string field."""
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        where = f"{path}.{key}" if path else key
        code = "missing_field" if value is None else "invalid_field"
        raise InvalidCallback(f"{where} must be a non-empty string", code=code)
    return value


def optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value.strip() else None


def from_unix(value: Any) -> datetime | None:
    """Seconds since the epoch (int, float or digits) to an aware UTC time; None if absent
    or not a plausible time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not 0 <= value < 32_503_680_000:  # year 3000
        return None
    return datetime.fromtimestamp(value, UTC)


def from_iso(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; more than 6 decimals are cut) in UTC."""
    if not isinstance(value, str) or not value:
        return None
    raw = value.strip().replace("Z", "+00:00")
    head, dot, tail = raw.partition(".")
    if dot:  # .NET writes 7 decimals (Postmark); Python reads at most 6
        digits = len(tail) - len(tail.lstrip("0123456789"))
        raw = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # no such time, or none in UTC (year 0 or 10000)
        return None
