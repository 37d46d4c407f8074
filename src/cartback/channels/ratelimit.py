"""A per-key token bucket: at most ``rate`` sends a second per key, bursts of ``burst``.

Twilio queues a long code at 1 message/s (integrations.md), so the default key is the
sender number and the default rate 1/s. The bucket never sleeps: it says how long to wait.

Guarantee: for every key and every closed window ``[t, t + w]`` of clock time, the number of
sends granted at a time inside the window is at most ``floor(burst + rate * w)``; over any
10 s window, ``floor(burst + 10 * rate)`` (11 for Twilio's 1/s with burst 1). A grant's time
is the moment :meth:`TokenBucket.try_acquire` returned True, or ``now + acquire(key)``.

Why it holds: tokens are at most ``burst`` when the window opens, the window refills at most
``rate * w`` more, every grant spends one whole token and the balance never goes below zero.
Arithmetic is exact (:class:`fractions.Fraction`, integer microseconds) so rounding cannot
let an extra send through; waits are rounded *up* to the microsecond and the bucket books the
rounded time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from cartback.core.clock import Clock

__all__ = ["TokenBucket"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000
_ONE_US = timedelta(microseconds=1)


@dataclass(slots=True)
class _Bucket:
    tokens: Fraction
    at_us: int  # the time ``tokens`` is valid at; in the future while sends are booked ahead


class TokenBucket:
    """Thread-safe; one instance holds a bucket per key (e.g. per sender number).

    ``rate`` is sends per second (``0.5`` is one every two seconds); ``burst`` is how many
    may go at once after a quiet spell (the bucket starts full).
    """

    def __init__(self, clock: Clock, *, rate: float | Fraction = 1, burst: int = 1) -> None:
        self.rate = Fraction(str(rate)) if isinstance(rate, float) else Fraction(rate)
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def max_in_window(self, seconds: float | Fraction) -> int:
        """The most sends this bucket grants a key in any closed window of ``seconds``."""
        return math.floor(self.burst + self.rate * Fraction(str(seconds)))

    def try_acquire(self, key: str) -> bool:
        """Take a token now if one is free (and nothing is booked ahead); never waits."""
        now = self._now_us()
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.at_us > now or bucket.tokens < 1:
                return False
            bucket.tokens -= 1
            return True

    def acquire(self, key: str) -> float:
        """Book the next send for ``key``; return the seconds to wait before sending (0: now).

        The booking is made whether or not the caller waits, so a caller that gives up
        instead of waiting still spends the slot.
        """
        now = self._now_us()
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.tokens < 1:
                gap = math.ceil((1 - bucket.tokens) * _US / self.rate)
                bucket.tokens = min(Fraction(self.burst), bucket.tokens + self.rate * gap / _US)
                bucket.at_us += gap
            bucket.tokens -= 1
            return (bucket.at_us - now) / _US

    def _refilled(self, key: str, now: int) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(Fraction(self.burst), now)
        elif now > bucket.at_us:
            earned = self.rate * (now - bucket.at_us) / _US
            bucket.tokens = min(Fraction(self.burst), bucket.tokens + earned)
            bucket.at_us = now
        return bucket

    def _now_us(self) -> int:
        return (self._clock.now() - _EPOCH) // _ONE_US
