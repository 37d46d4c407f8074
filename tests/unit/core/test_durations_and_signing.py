from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartback.core.durations import format_duration, parse_duration
from cartback.core.signing import Signer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("PT1H30M", timedelta(minutes=90)),
        ("P1DT2H", timedelta(hours=26)),
        ("1.5h", timedelta(minutes=90)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations_people_write(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["soon", "", "P", "PT", "-5m", "5 parsecs", "1h30"])
def test_bad_durations_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="'90s'"):
        parse_duration(bad)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_round_trips(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


def test_a_signed_token_verifies_and_any_change_is_refused() -> None:
    signer = Signer("a-secret-of-enough-length")
    token = signer.sign("r", "abc123")
    assert signer.unsign("r", token) == "abc123"
    assert signer.unsign("u", token) is None  # a restore token cannot unsubscribe
    assert Signer("another-secret-of-length").unsign("r", token) is None
    for i in range(len(token)):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert signer.unsign("r", changed) is None
    assert signer.unsign("r", "no-dot") is None
