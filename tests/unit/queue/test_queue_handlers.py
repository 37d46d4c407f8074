"""Registry, error text and stats: the worker's pieces that need no database."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session

from cartback.queue import ClaimedJob, Registry, WorkerStats
from cartback.queue.worker import MAX_ERROR_LENGTH, Outcome, short_error


def _handler(session: Session, job: ClaimedJob) -> None:
    return None


def test_register_directly_and_as_a_decorator() -> None:
    registry = Registry()

    registry.register("kind.a", _handler)

    @registry.register("kind.b")
    def other(session: Session, job: ClaimedJob) -> None:
        return None

    assert (registry.get("kind.a"), registry.get("kind.b"), registry.get("kind.c")) == (
        _handler,
        other,
        None,
    )
    assert registry.kinds() == frozenset({"kind.a", "kind.b"})


def test_registering_a_kind_twice_is_refused() -> None:
    registry = Registry()
    registry.register("kind.a", _handler)

    with pytest.raises(ValueError, match=r"kind\.a"):
        registry.register("kind.a", lambda session, job: None)

    assert registry.get("kind.a") is _handler


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (RuntimeError("boom"), "RuntimeError: boom"),
        (RuntimeError(), "RuntimeError"),
        (ValueError("first line\nsecond line"), "ValueError: first line"),
        (
            OSError("connect postgresql://app:hunter2@db:5432/cb failed"),
            "OSError: connect postgresql://***@db:5432/cb failed",
        ),
        (KeyError("api_key=sk_live_123 rejected"), "KeyError: 'api_key=*** rejected'"),
        (
            ValueError("recipient ann.lee+x@example.co.uk refused"),
            "ValueError: recipient ***@*** refused",
        ),
    ],
)
def test_short_error_is_one_line_without_secrets(error: Exception, text: str) -> None:
    assert short_error(error) == text


def test_short_error_is_bounded() -> None:
    assert len(short_error(ValueError("x" * 5_000))) == MAX_ERROR_LENGTH


def test_stats_count_each_outcome_and_sum_durations_across_threads() -> None:
    stats = WorkerStats()

    def work() -> None:
        for _ in range(1_000):
            stats.observe(kind="k", outcome=Outcome.DONE, seconds=0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.observe(kind="k", outcome=Outcome.RETRIED, seconds=1.0)
    stats.record_claimed(4_001)

    assert (stats.claimed, stats.done, stats.retried, stats.failed, stats.seconds) == (
        4_001,
        4_000,
        1,
        0,
        2_001.0,
    )
