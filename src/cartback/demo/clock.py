"""The demo's clock: fast, and never ahead of the simulated shoppers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from cartback.core.clock import ScaledClock


class DemoClock(ScaledClock):
    """A :class:`ScaledClock` that waits for due work, and that can stop.

    At 5400x a request that takes 50 ms real time is 4.5 simulated minutes; on a busy
    machine it can be half an hour, and a shopper who meant to buy five minutes after
    checkout would find the cart already abandoned. So the shoppers and the worker each
    hold the clock at their next due moment (:meth:`hold`): time runs freely up to the
    earliest one and waits there until that work is done, then catches up with real time.
    Time never goes backwards.

    :meth:`freeze` stops it once the story is over, so the numbers and links a visitor
    sees afterwards stay as the summary left them. :meth:`play` then runs it on, slower,
    for a person playing the shopper in the demo store: their cart's abandonment and its
    first reminder take a minute or two instead of an hour and a half.
    """

    def __init__(self, speed: float, start: datetime) -> None:
        super().__init__(speed, start=start)
        self.started_at = start
        self._lock = threading.Lock()
        self._holds: dict[str, datetime] = {}
        self._last = start
        self._frozen: datetime | None = None
        self._playing: _Play | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            if self._playing is not None:
                return self._playing.now()
            moment = super().now()
            if self._holds:
                moment = min(moment, *self._holds.values())
            self._last = max(moment, self._last)
            return self._last

    def hold(self, holder: str, until: datetime | None) -> None:
        """``holder``'s work due at ``until`` must run before time passes it; ``None``:
        ``holder`` has nothing due."""
        with self._lock:
            if until is None:
                self._holds.pop(holder, None)
            else:
                self._holds[holder] = until

    def freeze(self) -> None:
        moment = self.now()
        with self._lock:
            self._frozen = moment

    def play(self, speed: float) -> None:
        """Run on from now at ``speed`` times real time, holding for no one: only the
        worker and a person's browser act from here on."""
        moment = self.now()
        with self._lock:
            self._holds.clear()
            self._frozen = None
            self._playing = _Play(moment, time.monotonic(), speed)


@dataclass(frozen=True)
class _Play:
    start: datetime
    real_start: float  # time.monotonic() at ``start``
    speed: float

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.real_start) * self.speed)
