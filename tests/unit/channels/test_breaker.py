from __future__ import annotations

from datetime import timedelta

import pytest

from cartback.channels import CircuitBreaker, TransientSendError
from cartback.core.clock import ManualClock

KEY = "smtp://shop@mail.example.com:587?starttls=1"
OTHER = "smtp://mail.other.example:25"


def test_a_new_key_is_closed() -> None:
    breaker = CircuitBreaker(ManualClock())

    breaker.check(KEY)

    assert breaker.is_open(KEY) is False


def test_opens_after_a_failure_and_closes_after_the_cooldown() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock, cooldown=timedelta(seconds=30))

    breaker.record_failure(KEY)

    with pytest.raises(TransientSendError) as raised:
        breaker.check(KEY)
    assert raised.value.code == "circuit.open"
    assert raised.value.reason == "circuit open"
    assert raised.value.retry_after == 30.0
    clock.advance(timedelta(seconds=29))
    assert breaker.is_open(KEY) is True
    clock.advance(timedelta(seconds=1))
    assert breaker.is_open(KEY) is False


def test_one_key_failing_leaves_other_keys_closed() -> None:
    breaker = CircuitBreaker(ManualClock())

    breaker.record_failure(KEY)

    assert breaker.is_open(KEY) is True
    assert breaker.is_open(OTHER) is False


def test_a_failed_trial_after_the_cooldown_reopens_and_success_resets() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(clock, cooldown=timedelta(seconds=30))
    breaker.record_failure(KEY)
    clock.advance(timedelta(seconds=30))

    breaker.record_failure(KEY)  # the trial send failed

    assert breaker.is_open(KEY) is True
    clock.advance(timedelta(seconds=30))
    breaker.record_success(KEY)
    assert breaker.is_open(KEY) is False


def test_threshold_counts_consecutive_failures() -> None:
    breaker = CircuitBreaker(ManualClock(), failure_threshold=3)

    breaker.record_failure(KEY)
    breaker.record_failure(KEY)
    assert breaker.is_open(KEY) is False
    breaker.record_success(KEY)
    breaker.record_failure(KEY)
    breaker.record_failure(KEY)
    assert breaker.is_open(KEY) is False
    breaker.record_failure(KEY)

    assert breaker.is_open(KEY) is True
