from __future__ import annotations

from bisect import bisect_right
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartback.channels import TokenBucket
from cartback.core.clock import ManualClock

SENDER = "+14155552345"
OTHER = "+14155550000"
WINDOW_US = 10_000_000


def test_twilio_default_allows_one_per_second() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=1, burst=1)

    assert bucket.try_acquire(SENDER) is True
    assert bucket.try_acquire(SENDER) is False
    clock.advance(timedelta(milliseconds=999))
    assert bucket.try_acquire(SENDER) is False
    clock.advance(timedelta(milliseconds=1))
    assert bucket.try_acquire(SENDER) is True


def test_acquire_books_slots_and_says_how_long_to_wait() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=2, burst=1)

    waits = [bucket.acquire(SENDER) for _ in range(4)]

    assert waits == [0.0, 0.5, 1.0, 1.5]
    assert bucket.try_acquire(SENDER) is False  # the booked slots come first
    clock.advance(timedelta(seconds=2))
    assert bucket.try_acquire(SENDER) is True


def test_burst_then_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=1, burst=3)

    granted = [bucket.try_acquire(SENDER) for _ in range(4)]

    assert granted == [True, True, True, False]
    assert bucket.acquire(SENDER) == 1.0


def test_keys_are_independent() -> None:
    bucket = TokenBucket(ManualClock(), rate=1, burst=1)

    assert bucket.try_acquire(SENDER) is True
    assert bucket.try_acquire(OTHER) is True
    assert bucket.try_acquire(SENDER) is False


def test_waits_round_up_to_the_microsecond() -> None:
    bucket = TokenBucket(ManualClock(), rate=3, burst=1)

    waits = [bucket.acquire(SENDER) for _ in range(3)]

    assert waits == [0.0, 0.333334, 0.666668]


def test_max_in_window_is_burst_plus_rate_times_window() -> None:
    assert TokenBucket(ManualClock(), rate=1, burst=1).max_in_window(10) == 11
    assert TokenBucket(ManualClock(), rate=0.3, burst=2).max_in_window(10) == 5


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rejects_a_bucket_that_cannot_send(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(ManualClock(), rate=rate, burst=burst)


_steps = st.lists(
    st.tuples(
        # clock move before the attempt, in µs: bursts at one instant, steady sends, quiet spells
        st.one_of(
            st.just(0),
            st.integers(min_value=0, max_value=1_000_000),
            st.integers(min_value=0, max_value=30_000_000),
        ),
        st.sampled_from(["try", "acquire"]),
        st.sampled_from([SENDER, OTHER]),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([Fraction(1), Fraction(1, 3), Fraction(2), Fraction(7, 2), 0.1, 10]),
    burst=st.integers(min_value=1, max_value=5),
    steps=_steps,
)
def test_never_more_than_burst_plus_rate_times_ten_in_any_10s_window(
    rate: Fraction | float, burst: int, steps: list[tuple[int, str, str]]
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=rate, burst=burst)
    grants: dict[str, list[int]] = {SENDER: [], OTHER: []}
    now_us = 0

    for move_us, kind, key in steps:
        clock.advance(timedelta(microseconds=move_us))
        now_us += move_us
        if kind == "try":
            if bucket.try_acquire(key):
                grants[key].append(now_us)
        else:
            grants[key].append(now_us + round(bucket.acquire(key) * 1_000_000))

    bound = bucket.max_in_window(10)
    assert bound == int(burst + bucket.rate * 10)  # floor, for these positive values
    for times in grants.values():
        assert times == sorted(times)
        for i, start in enumerate(times):
            # closed window [start, start + 10 s]; the busiest window starts at a grant
            assert bisect_right(times, start + WINDOW_US) - i <= bound
