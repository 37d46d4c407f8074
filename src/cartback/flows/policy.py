"""The contact policy: may this contact get this channel now? Pure, like the engine.

Every channel of a step is judged in order; a verdict is one of

- :class:`Allow` — send on it now;
- :class:`NotNow` — not yet (quiet hours, a Sunday in France, a newsletter today): the step
  waits until ``until``, the next allowed moment; it is never dropped;
- :class:`Never` — not for this step (no consent, suppressed, no address, sunset, US SMS
  rules): the next channel is tried.

Contact-wide rules (the frequency budget, an unfulfilled order) come first and skip the
whole step. Local time is the contact's: their timezone, else their phone number's, else
the store's. The caller gathers a :class:`PolicyInput`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from cartback.stores.schemas import ContactPolicy, QuietHours

# A deferral is found by stepping over quiet spans; a fortnight of holidays and Sundays
# is more than any country has in a row, so the search always ends well before this.
_MAX_DEFERRAL_STEPS = 32
US_SMS_WINDOW = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Allow:
    pass


@dataclass(frozen=True, slots=True)
class NotNow:
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Never:
    reason: str


Verdict = Allow | NotNow | Never


@dataclass(frozen=True, slots=True)
class ChannelState:
    """One channel as it stands for this contact.

    ``address`` is where a send would go (email, E.164 phone, chat id, "2 devices"); None
    with ``unreachable`` saying why (``no_phone``, ``landline``, ``not_configured``...).
    ``consent`` is the newest consent ledger entry (None: never asked).
    """

    address: str | None
    unreachable: str | None = None
    consent: bool | None = None
    suppressed: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyInput:
    channels: Mapping[str, ChannelState]
    timezone: str  # IANA; already resolved (contact, else phone, else store)
    country: str | None  # ISO 3166-1 alpha-2; contact, else phone, else store
    orders_count: int
    abandoned_at: datetime
    last_message_at: datetime | None  # the newest message that may have reached them
    journey_messages: int  # messages of this journey that may have reached them
    journey_sms: int
    external_message_at: datetime | None  # a newsletter/campaign the store sent
    pending_order_at: datetime | None  # the newest placed-but-unfulfilled order
    ignored_journeys: int  # the newest ended journeys in a row with no open/click/order


def contact_verdict(
    facts: PolicyInput, policy: ContactPolicy, now: datetime
) -> NotNow | Never | None:
    """Rules for the contact whatever the channel; None when none of them holds the step."""
    window = policy.pending_order
    if (
        window is not None
        and facts.pending_order_at is not None
        and facts.pending_order_at > now - window
    ):
        return Never("order_not_yet_fulfilled")
    if facts.journey_messages >= policy.max_per_journey:
        return Never("journey_message_cap")
    if facts.last_message_at is not None and facts.last_message_at > now - policy.gap:
        return Never("frequency_cap")
    if policy.newsletter_moves_to_next_day and facts.external_message_at is not None:
        zone = _zone(facts.timezone)
        today = now.astimezone(zone).date()
        if facts.external_message_at.astimezone(zone).date() == today:
            return NotNow(_same_time_next_day(now, zone), "newsletter_sent_today")
    return None


def channel_verdict(
    channel: str, facts: PolicyInput, policy: ContactPolicy, now: datetime
) -> Verdict:
    """May ``channel`` be used for this contact now?"""
    state = facts.channels.get(channel)
    if state is None or state.address is None:
        return Never(state.unreachable if state and state.unreachable else f"no_{channel}")
    if state.suppressed:
        return Never(state.suppressed)
    refusal = _consent_refusal(channel, state, facts, policy)
    if refusal is not None:
        return Never(refusal)
    if channel == "email" and policy.sunset_after and facts.ignored_journeys >= policy.sunset_after:
        return Never("sunset")
    if channel == "sms" and policy.us_sms_rules and facts.country in (None, "US"):
        if facts.journey_sms >= 1:
            return Never("us_sms_one_per_journey")
        if now > facts.abandoned_at + US_SMS_WINDOW:
            return Never("us_sms_after_48h")
    until, reason = next_allowed(channel, facts, policy, now)
    if until > now:
        return NotNow(until, reason)
    return Allow()


def _consent_refusal(
    channel: str, state: ChannelState, facts: PolicyInput, policy: ContactPolicy
) -> str | None:
    if state.consent is False:
        return "consent_withdrawn"
    if state.consent is True:
        return None
    if channel != "email":
        return "no_consent"  # SMS, messengers and push only after an opt-in
    if policy.email_basis == "opt_in":
        return "no_consent"
    if policy.email_basis == "soft_opt_in" and facts.orders_count == 0:
        return "no_consent_not_a_customer"
    return None


def next_allowed(
    channel: str, facts: PolicyInput, policy: ContactPolicy, now: datetime
) -> tuple[datetime, str]:
    """The first moment from ``now`` on when ``channel`` may reach the contact, and why
    it is later than now (the first rule that held it back)."""
    zone = _zone(facts.timezone)
    rule = policy.countries.get(facts.country or "")
    applies = rule is not None and channel in rule.channels
    quiet = rule.quiet_hours if applies and rule and rule.quiet_hours else None
    quiet = quiet or policy.quiet_hours.get(channel)  # type: ignore[call-overload]
    moment = now
    first_reason = ""
    for _ in range(_MAX_DEFERRAL_STEPS):
        local = moment.astimezone(zone)
        reason = ""
        later = moment
        if applies and rule is not None and rule.no_sundays and local.weekday() == 6:
            reason, later = "sunday", _start_of_next_day(local, zone)
        elif applies and rule and rule.no_public_holidays and _is_holiday(facts.country, local):
            reason, later = "public_holiday", _start_of_next_day(local, zone)
        elif quiet is not None and _in_quiet(local.time(), quiet):
            reason, later = "quiet_hours", _end_of_quiet(local, quiet, zone)
        if not reason:
            return moment, first_reason
        first_reason = first_reason or reason
        moment = later
    return moment, first_reason


def _in_quiet(clock: time, quiet: QuietHours) -> bool:
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end  # crosses midnight, e.g. 21:00-09:00


def _end_of_quiet(local: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    return _at(day, quiet.end, zone)


def _start_of_next_day(local: datetime, zone: ZoneInfo) -> datetime:
    return _at(local.date() + timedelta(days=1), time(0, 0), zone)


def _same_time_next_day(now: datetime, zone: ZoneInfo) -> datetime:
    local = now.astimezone(zone)
    return _at(local.date() + timedelta(days=1), local.time(), zone)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock moment in ``zone`` as an aware datetime (a time skipped by a DST change
    lands on the moment after the gap, as zoneinfo resolves it)."""
    moment = datetime.combine(day, clock, tzinfo=zone)
    return moment.astimezone(ZoneInfo("UTC")).astimezone(moment.tzinfo)


def _is_holiday(country: str | None, local: datetime) -> bool:
    return country is not None and local.date() in _holidays(country)


@lru_cache(maxsize=64)
def _holidays(country: str) -> holidays.HolidayBase:
    try:
        return holidays.country_holidays(country)
    except NotImplementedError:  # a country the holidays package does not know
        return holidays.HolidayBase()


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
