"""What the contact policy reads about a contact, built for pure tests of the engine and
the policy: a shopper with an email address and nothing else going on, at T0."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cartback.flows.policy import ChannelState, PolicyInput

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon in UTC
EMAIL = ChannelState(address="ann@example.com")


def policy_input(**changes: Any) -> PolicyInput:
    base = PolicyInput(
        channels={"email": EMAIL},
        timezone="UTC",
        country=None,
        orders_count=0,
        abandoned_at=T0,
        last_message_at=None,
        journey_messages=0,
        journey_sms=0,
        external_message_at=None,
        pending_order_at=None,
        ignored_journeys=0,
    )
    return replace(base, **changes)
