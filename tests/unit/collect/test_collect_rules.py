"""The snippet's pure rules: telling bots from shoppers, and putting a browser's event
times on our clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartback.collect import bots
from cartback.collect.schemas import SnippetProductViewed
from cartback.collect.service import server_times

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("agent", "webdriver", "reason"),
    [
        (CHROME, False, None),
        (SAFARI_IOS, False, None),
        (CHROME, True, "webdriver"),
        (CHROME.replace("Chrome/", "HeadlessChrome/"), False, "headless"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", False,
         "bot_user_agent"),
        ("python-requests/2.32.3", False, "bot_user_agent"),
        ("curl/8.5.0", False, "bot_user_agent"),
        ("", False, "bot_user_agent"),
        (None, False, "bot_user_agent"),
    ],
)  # fmt: skip
def test_request_junk(agent: str | None, webdriver: bool, reason: str | None) -> None:
    assert bots.request_junk(agent, webdriver=webdriver) == reason


@pytest.mark.parametrize(
    ("email", "disposable"),
    [
        ("ann@mailinator.com", True),
        ("ann@MAILINATOR.com", True),
        ("ann@eu.mailinator.com", True),
        ("ann@gmail.com", False),
        ("ann@example.com", False),
        ("ann@com", False),
    ],
)
def test_disposable_domains(email: str, disposable: bool) -> None:
    assert bots.is_disposable(email) is disposable


def test_a_checkout_within_a_second_of_a_first_product_view_is_too_fast() -> None:
    first = NOW
    assert bots.too_fast_to_checkout(first, True, first + timedelta(milliseconds=999))
    assert not bots.too_fast_to_checkout(first, True, first + timedelta(seconds=1))
    assert not bots.too_fast_to_checkout(first, False, first)  # the first event was the checkout


def _viewed(at: datetime) -> Any:
    return SnippetProductViewed.model_validate(
        {
            "id": "evt-00000001",
            "type": "product.viewed",
            "at": at.isoformat(),
            "product": {"sku": "A", "name": "A", "price": 1, "currency": "USD"},
        }
    )


def test_times_of_a_good_clock_are_kept() -> None:
    ats = [NOW - timedelta(seconds=30), NOW - timedelta(seconds=5)]
    assert server_times([_viewed(a) for a in ats], NOW) == ats


def test_a_clock_hours_off_is_anchored_on_ours_and_keeps_the_gaps() -> None:
    behind = NOW - timedelta(hours=3)
    events = [_viewed(behind - timedelta(seconds=10)), _viewed(behind)]
    assert server_times(events, NOW) == [NOW - timedelta(seconds=10), NOW]


@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1970, 1, 2),  # noqa: DTZ001
            max_value=datetime(9998, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_time_lands_within_the_last_day_and_keeps_the_order(ats: list[datetime]) -> None:
    times = server_times([_viewed(a) for a in ats], NOW)

    assert all(NOW - timedelta(hours=24) <= t <= NOW for t in times)
    order = sorted(range(len(ats)), key=lambda i: ats[i])
    assert [times[i] for i in order] == sorted(times)
