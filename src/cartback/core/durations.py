"""Durations as people write them in flows: ``90s``, ``30m``, ``24h``, ``7d``, ``PT1H30M``."""

from __future__ import annotations

import re
from datetime import timedelta

_SIMPLE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float) -> timedelta:
    """Parse a duration.

    >>> parse_duration("90s"), parse_duration("PT1H30M")
    (datetime.timedelta(seconds=90), datetime.timedelta(seconds=5400))

    Plain numbers are seconds. Raises ``ValueError`` naming the accepted forms.
    """
    if isinstance(text, bool):
        raise ValueError("a duration cannot be true/false")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=text)
    match = _SIMPLE.match(text)
    if match:
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    iso = _ISO.match(text.strip().upper())
    if iso and text.strip().upper() not in ("P", "PT") and any(iso.groupdict().values()):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return timedelta(**parts)
    raise ValueError(
        f"{text!r} is not a duration; write e.g. '90s', '30m', '24h', '7d' or ISO 8601 'PT1H30M'"
    )


def format_duration(delta: timedelta) -> str:
    """The shortest of our own forms that states ``delta`` exactly (``5400s`` -> ``90m``)."""
    seconds = delta.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
