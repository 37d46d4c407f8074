"""One clock for the whole process.

Everything that needs "now" takes a :class:`Clock`. Production uses
:class:`SystemClock`; tests use :class:`ManualClock` and move it; the demo uses
:class:`ScaledClock` so that hours pass in seconds.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock.set needs an aware datetime")
        with self._lock:
            self._now = moment.astimezone(UTC)


class ScaledClock:
    """Real time, sped up by ``speed`` from the moment the clock is made.

    ``ScaledClock(3600)`` makes one real second an hour, which is how the demo
    runs a 72-hour journey in about a minute.
    """

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._t0) * self.speed
        return self._start + timedelta(seconds=elapsed)

    def real_seconds(self, delta: timedelta) -> float:
        """How many real seconds ``delta`` of clock time takes."""
        return delta.total_seconds() / self.speed
