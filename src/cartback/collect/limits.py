"""In-process rate limits for ``/v1/collect``: a token bucket per IP and per store.

Each limit is ``n`` requests a minute: a client may spend the minute's ``n`` at once
after a quiet spell, then gets one more every ``60 / n`` seconds (the guarantee of
:class:`cartback.channels.TokenBucket`: at most ``n + n * w / 60`` in any ``w`` seconds).
Limits live in each API process: behind a load balancer with ``k`` processes a client gets
at most ``k`` times the limit, which is what they are for (flood control, not billing).
"""

from __future__ import annotations

import math
import threading
from fractions import Fraction

from cartback.channels import TokenBucket
from cartback.core.clock import Clock

# Buckets kept per limit before they are all forgotten (a flood of new IPs must not grow
# memory without bound; forgetting hands everyone a fresh minute, which is harmless).
MAX_KEYS = 100_000


class RateLimits:
    """Thread-safe. ``allow("ip", "st_1|203.0.113.9", 60)`` spends one of that key's tokens."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, int], tuple[TokenBucket, set[str]]] = {}
        self._lock = threading.Lock()

    def allow(self, scope: str, key: str, per_minute: int) -> bool:
        with self._lock:
            found = self._buckets.get((scope, per_minute))
            if found is None or len(found[1]) >= MAX_KEYS:
                bucket = TokenBucket(self._clock, rate=Fraction(per_minute, 60), burst=per_minute)
                found = self._buckets[(scope, per_minute)] = (bucket, set())
            found[1].add(key)
        return found[0].try_acquire(key)


def retry_after(per_minute: int) -> int:
    """Whole seconds until the next token of a drained bucket (Retry-After)."""
    return max(1, math.ceil(60 / per_minute))
