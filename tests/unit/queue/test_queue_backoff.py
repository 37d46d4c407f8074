"""Backoff: full jitter under an exponential ceiling, capped at an hour."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cartback.queue.backoff import backoff, ceiling


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (10, 2_560.0), (11, 3_600.0), (10_000, 3_600.0)],
)
def test_the_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, seconds: float) -> None:
    assert ceiling(attempt) == seconds


def test_attempt_zero_or_less_is_treated_as_the_first() -> None:
    assert (ceiling(0), ceiling(-3)) == (5.0, 5.0)


@pytest.mark.parametrize("attempt", [1, 2, 5, 9, 12, 50])
def test_every_delay_lies_between_zero_and_the_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)

    delays = [backoff(attempt, rng=rng) for _ in range(2_000)]

    assert min(delays) >= timedelta(0)
    assert max(delays) <= timedelta(seconds=ceiling(attempt))
    # Full jitter: the draws use the whole range, not a band near the top.
    assert min(delays) < timedelta(seconds=ceiling(attempt) * 0.05)
    assert max(delays) > timedelta(seconds=ceiling(attempt) * 0.95)


def test_delays_grow_with_attempts_on_average() -> None:
    rng = random.Random(1)

    means = [
        sum((backoff(attempt, rng=rng) for _ in range(2_000)), timedelta()) / 2_000
        for attempt in (1, 3, 5, 7, 9)
    ]

    assert means == sorted(means)
    assert means[-1] > 100 * means[0]


def test_a_seeded_rng_gives_the_same_delays() -> None:
    first = [backoff(n, rng=random.Random(42)) for n in range(1, 8)]
    second = [backoff(n, rng=random.Random(42)) for n in range(1, 8)]

    assert first == second


def test_base_and_cap_can_be_overridden() -> None:
    delay = backoff(20, rng=random.Random(3), base=timedelta(seconds=1), cap=timedelta(minutes=1))

    assert timedelta(0) <= delay <= timedelta(minutes=1)
