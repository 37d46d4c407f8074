"""The contact policy without a database: consent, quiet hours in the shopper's own time,
country rules, the frequency budget, newsletters, unfulfilled orders, sunset, US SMS."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from cartback.flows.policy import (
    Allow,
    ChannelState,
    Never,
    NotNow,
    PolicyInput,
    channel_verdict,
    contact_verdict,
)
from cartback.stores.schemas import ContactPolicy, CountryRule, QuietHours
from support.policy_inputs import T0, policy_input

MONDAY_NOON = T0
SMS = ChannelState("+37060012345", consent=True)
POLICY = ContactPolicy()


def facts(**changes: Any) -> PolicyInput:
    """A Lithuanian shopper who opted in to SMS."""
    defaults: dict[str, Any] = {
        "channels": {"sms": SMS, "email": ChannelState("ann@example.com")},
        "country": "LT",
    }
    return policy_input(**{**defaults, **changes})


def test_sms_needs_an_opt_in_and_never_goes_to_a_suppressed_number() -> None:
    never_asked = facts(channels={"sms": replace(SMS, consent=None)})
    stopped = facts(channels={"sms": replace(SMS, suppressed="stop_keyword")})
    assert channel_verdict("sms", never_asked, POLICY, MONDAY_NOON) == Never("no_consent")
    assert channel_verdict("sms", stopped, POLICY, MONDAY_NOON) == Never("stop_keyword")
    assert channel_verdict("sms", facts(), POLICY, MONDAY_NOON) == Allow()


def test_quiet_hours_defer_to_nine_in_the_morning_of_the_shoppers_own_zone() -> None:
    late = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)  # 22:30 in Vilnius, 15:30 in New York
    vilnius = channel_verdict("sms", facts(timezone="Europe/Vilnius"), POLICY, late)
    new_york = channel_verdict("sms", facts(timezone="America/New_York"), POLICY, late)
    assert vilnius == NotNow(
        datetime(2026, 3, 3, 9, 0, tzinfo=ZoneInfo("Europe/Vilnius")), "quiet_hours"
    )
    assert new_york == Allow()
    assert channel_verdict("email", facts(timezone="Europe/Vilnius"), POLICY, late) == Allow()


def test_france_no_marketing_sms_on_sundays_or_public_holidays() -> None:
    policy = ContactPolicy(
        countries={"FR": CountryRule(channels=["sms"], no_sundays=True, no_public_holidays=True)}
    )
    sunday = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    paris = facts(timezone="Europe/Paris", country="FR")
    verdict = channel_verdict("sms", paris, policy, sunday)
    assert verdict == NotNow(datetime(2026, 3, 9, 9, 0, tzinfo=ZoneInfo("Europe/Paris")), "sunday")
    bastille_day = datetime(2026, 7, 14, 12, 0, tzinfo=UTC)  # a Tuesday
    verdict = channel_verdict("sms", paris, policy, bastille_day)
    assert isinstance(verdict, NotNow) and verdict.reason == "public_holiday"
    assert verdict.until == datetime(2026, 7, 15, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert channel_verdict(
        "sms", facts(timezone="Europe/Berlin", country="DE"), policy, sunday
    ) == (Allow())


def test_the_frequency_budget_and_the_journey_cap_skip_the_step() -> None:
    recent = facts(last_message_at=MONDAY_NOON - timedelta(hours=15))
    older = facts(last_message_at=MONDAY_NOON - timedelta(hours=16, seconds=1))
    assert contact_verdict(recent, POLICY, MONDAY_NOON) == Never("frequency_cap")
    assert contact_verdict(older, POLICY, MONDAY_NOON) is None
    full = facts(journey_messages=4)
    assert contact_verdict(full, POLICY, MONDAY_NOON) == Never("journey_message_cap")


def test_a_newsletter_today_moves_the_reminder_to_the_next_day() -> None:
    zone = ZoneInfo("Asia/Almaty")
    sent = facts(timezone="Asia/Almaty", external_message_at=MONDAY_NOON - timedelta(hours=3))
    assert contact_verdict(sent, POLICY, MONDAY_NOON) == NotNow(
        datetime(2026, 3, 3, 17, 0, tzinfo=zone), "newsletter_sent_today"
    )
    yesterday = facts(external_message_at=MONDAY_NOON - timedelta(days=1))
    assert contact_verdict(yesterday, POLICY, MONDAY_NOON) is None


def test_an_order_not_yet_fulfilled_stops_cart_reminders_for_a_while() -> None:
    pending = facts(pending_order_at=MONDAY_NOON - timedelta(days=2))
    assert contact_verdict(pending, POLICY, MONDAY_NOON) == Never("order_not_yet_fulfilled")
    stale = facts(pending_order_at=MONDAY_NOON - timedelta(days=15))
    assert contact_verdict(stale, POLICY, MONDAY_NOON) is None


def test_sunset_stops_email_after_ignored_journeys() -> None:
    ignored = facts(ignored_journeys=3)
    assert channel_verdict("email", ignored, POLICY, MONDAY_NOON) == Never("sunset")
    assert channel_verdict("email", facts(ignored_journeys=2), POLICY, MONDAY_NOON) == Allow()
    assert channel_verdict("sms", ignored, POLICY, MONDAY_NOON) == Allow()


def test_us_cart_sms_rules_one_per_journey_within_48_hours() -> None:
    us = ContactPolicy(us_sms_rules=True)
    shopper = facts(country="US", timezone="America/Chicago")
    noon_in_chicago = MONDAY_NOON + timedelta(hours=6)
    assert channel_verdict("sms", shopper, us, noon_in_chicago) == Allow()
    assert channel_verdict("sms", replace(shopper, journey_sms=1), us, noon_in_chicago) == Never(
        "us_sms_one_per_journey"
    )
    assert channel_verdict("sms", shopper, us, MONDAY_NOON + timedelta(hours=49)) == Never(
        "us_sms_after_48h"
    )


@given(
    minutes=st.integers(min_value=0, max_value=14 * 24 * 60),
    zone=st.sampled_from(
        ["Europe/Vilnius", "Asia/Almaty", "Asia/Tashkent", "Asia/Tehran", "America/New_York"]
    ),
    start=st.integers(min_value=0, max_value=23),
    end=st.integers(min_value=0, max_value=23),
)
def test_a_deferral_always_lands_on_an_allowed_moment_and_never_earlier(
    minutes: int, zone: str, start: int, end: int
) -> None:
    now = MONDAY_NOON + timedelta(minutes=minutes)
    quiet = QuietHours(start=time(start), end=time(end))
    policy = ContactPolicy(quiet_hours={"sms": quiet})
    verdict = channel_verdict("sms", facts(timezone=zone), policy, now)
    if isinstance(verdict, Allow):
        return
    assert isinstance(verdict, NotNow)
    assert verdict.until > now
    assert channel_verdict("sms", facts(timezone=zone), policy, verdict.until) == Allow()
    local = verdict.until.astimezone(ZoneInfo(zone)).time()
    assert local.replace(second=0, microsecond=0) == time(end) or quiet.start == quiet.end
