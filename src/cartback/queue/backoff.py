"""How long a failed job waits before its next attempt.

Exponential growth with full jitter (the "Full Jitter" of the AWS Architecture
Blog's "Exponential Backoff And Jitter"; Oban's ``Backoff`` does the same): the
delay is drawn uniformly from ``[0, min(cap, base * 2 ** (attempt - 1))]``, so
workers that failed together (a provider outage) spread out instead of coming
back as one thundering herd.
"""

from __future__ import annotations

import random
from datetime import timedelta

# 5 s lets a blip (a connection reset, a 429) clear on the next try; 1 h keeps a
# job that fails for a day from waiting so long that its message is stale.
BASE = timedelta(seconds=5)
CAP = timedelta(hours=1)


def backoff(
    attempt: int,
    *,
    rng: random.Random | None = None,
    base: timedelta = BASE,
    cap: timedelta = CAP,
) -> timedelta:
    """The wait before the attempt after ``attempt`` (1 = the first attempt failed).

    >>> backoff(3, rng=random.Random(1)) <= timedelta(seconds=20)
    True
    """
    return timedelta(seconds=(rng or random).uniform(0, ceiling(attempt, base=base, cap=cap)))


def ceiling(attempt: int, *, base: timedelta = BASE, cap: timedelta = CAP) -> float:
    """The largest wait, in seconds, that :func:`backoff` can return for ``attempt``."""
    exponent = max(attempt, 1) - 1
    # 2 ** 30 * 5 s is far past any cap; stop growing before the float gets silly.
    growth = float(2 ** min(exponent, 30))
    return min(cap.total_seconds(), base.total_seconds() * growth)
