"""The journey's decisions, without a database: given a state and a moment, one action."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cartback.flows.definition import FlowDefinition, default_flow
from cartback.flows.engine import (
    CartView,
    Complete,
    ContactView,
    EnrollmentView,
    Exit,
    Send,
    Skip,
    Wait,
    decide,
    entry_refusal,
)
from cartback.flows.policy import ChannelState
from cartback.stores.schemas import ContactPolicy
from support.policy_inputs import EMAIL, T0, policy_input

FLOW = default_flow()
CART = CartView(status="abandoned", value=5000, item_count=2, abandoned_at=T0)
POLICY = ContactPolicy()


facts = policy_input
ANN = facts()


def at_step(index: int) -> EnrollmentView:
    return EnrollmentView(step_index=index, started_at=T0)


def test_the_first_step_waits_until_one_hour_after_abandonment() -> None:
    assert decide(at_step(0), CART, ANN, FLOW, POLICY, T0 + timedelta(minutes=59)) == Wait(
        T0 + timedelta(hours=1), "not_due"
    )
    action = decide(at_step(0), CART, ANN, FLOW, POLICY, T0 + timedelta(hours=1))
    assert isinstance(action, Send)
    assert (action.step_index, action.step.template, action.channel) == (0, "reminder", "email")


def test_later_steps_are_timed_from_abandonment_not_from_the_previous_send() -> None:
    action = decide(at_step(1), CART, ANN, FLOW, POLICY, T0 + timedelta(hours=24))
    assert isinstance(action, Send) and action.step.template == "help"
    assert decide(at_step(2), CART, ANN, FLOW, POLICY, T0 + timedelta(hours=71)) == Wait(
        T0 + timedelta(hours=72), "not_due"
    )


def test_after_the_last_step_the_journey_completes() -> None:
    assert decide(at_step(3), CART, ANN, FLOW, POLICY, T0 + timedelta(days=9)) == Complete()


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("purchased", "purchased"),
        ("recovered", "purchased"),
        ("cleared", "cart_emptied"),
        ("expired", "cart_expired"),
        ("active", "cart_changed"),
    ],
)
def test_a_cart_that_is_no_longer_abandoned_ends_the_journey(status: str, reason: str) -> None:
    cart = CartView(status=status, value=5000, item_count=2, abandoned_at=T0)
    assert decide(at_step(0), cart, ANN, FLOW, POLICY, T0 + timedelta(hours=1)) == Exit(reason)


def test_a_shopper_closed_on_every_channel_of_the_flow_ends_the_journey() -> None:
    gone = facts(channels={"email": replace(EMAIL, suppressed="unsubscribed")})
    withdrawn = facts(channels={"email": replace(EMAIL, consent=False)})
    now = T0 + timedelta(hours=1)
    assert decide(at_step(0), CART, gone, FLOW, POLICY, now) == Exit("unsubscribed")
    assert decide(at_step(0), CART, withdrawn, FLOW, POLICY, now) == Exit("consent_withdrawn")


def test_an_sms_refusal_does_not_end_a_journey_that_can_still_email() -> None:
    flow = FlowDefinition.model_validate({"steps": [{"after": "1h", "channels": ["sms", "email"]}]})
    stopped = facts(
        channels={"email": EMAIL, "sms": ChannelState("+37060000000", suppressed="stop_keyword")}
    )
    action = decide(at_step(0), CART, stopped, flow, POLICY, T0 + timedelta(hours=1))
    assert action == Send(0, flow.steps[0], "email", {"sms": "stop_keyword"})


def test_opt_in_mode_skips_a_contact_who_never_opted_in() -> None:
    now = T0 + timedelta(hours=1)
    strict = ContactPolicy(email_basis="opt_in")
    assert decide(at_step(0), CART, ANN, FLOW, strict, now) == Skip(
        0, "no_channel_allowed", {"email": "no_consent"}
    )
    opted_in = facts(channels={"email": replace(EMAIL, consent=True)})
    assert isinstance(decide(at_step(0), CART, opted_in, FLOW, strict, now), Send)


def test_soft_opt_in_lets_existing_customers_get_email() -> None:
    now = T0 + timedelta(hours=1)
    soft = ContactPolicy(email_basis="soft_opt_in")
    assert isinstance(decide(at_step(0), CART, facts(orders_count=2), FLOW, soft, now), Send)
    assert decide(at_step(0), CART, ANN, FLOW, soft, now) == Skip(
        0, "no_channel_allowed", {"email": "no_consent_not_a_customer"}
    )


def test_no_email_address_skips_an_email_step() -> None:
    phone_only = facts(channels={"email": ChannelState(None, unreachable="no_email_address")})
    now = T0 + timedelta(hours=1)
    assert decide(at_step(0), CART, phone_only, FLOW, POLICY, now) == Skip(
        0, "no_channel_allowed", {"email": "no_email_address"}
    )


def test_conditions_look_at_the_step_before() -> None:
    flow = FlowDefinition.model_validate(
        {
            "steps": [
                {"after": "30m", "channel": "sms"},
                {"after": "1h", "channel": "email", "condition": "previous_not_sent"},
            ]
        }
    )
    now = T0 + timedelta(hours=1)
    assert decide(at_step(1), CART, ANN, flow, POLICY, now, previous_sent=True) == Skip(
        1, "previous_step_sent"
    )
    assert isinstance(decide(at_step(1), CART, ANN, flow, POLICY, now, previous_sent=False), Send)


def test_entry_rules() -> None:
    flow = FlowDefinition.model_validate(
        {
            "entry": {"min_value": 3000, "min_items": 2, "customer": "first_time"},
            "steps": [{"after": "1h"}],
        }
    )
    ann = ContactView(0, ANN.channels)
    small = CartView("abandoned", 2999, 2, T0)
    one_item = CartView("abandoned", 9000, 1, T0)
    returning = ContactView(3, ANN.channels)
    assert entry_refusal(flow, CART, ann) is None
    assert entry_refusal(flow, small, ann) == "below_min_value"
    assert entry_refusal(flow, one_item, ann) == "below_min_items"
    assert entry_refusal(flow, CART, returning) == "not_first_time_customer"
    assert entry_refusal(flow, CART, None) == "no_reachable_contact"
    no_email = ContactView(0, {"email": ChannelState(None, "no_email_address")})
    assert entry_refusal(flow, CART, no_email) == "no_reachable_contact"
    unsubscribed = ContactView(0, {"email": replace(EMAIL, suppressed="unsubscribed")})
    assert entry_refusal(flow, CART, unsubscribed) == "unsubscribed"
    disabled = flow.model_copy(update={"enabled": False})
    assert entry_refusal(disabled, CART, ann) == "flow_disabled"


def test_steps_must_be_in_time_order_and_name_their_channels_once() -> None:
    with pytest.raises(ValueError, match="in order"):
        FlowDefinition.model_validate({"steps": [{"after": "2h"}, {"after": "1h"}]})
    with pytest.raises(ValueError, match="not both"):
        FlowDefinition.model_validate(
            {"steps": [{"after": "1h", "channel": "sms", "channels": ["sms"]}]}
        )
    with pytest.raises(ValueError, match="twice"):
        FlowDefinition.model_validate({"steps": [{"after": "1h", "channels": ["sms", "sms"]}]})


@given(
    step=st.integers(min_value=0, max_value=2),
    offset=st.integers(min_value=0, max_value=10 * 24 * 3600),
)
def test_a_step_is_sent_exactly_when_it_is_due(step: int, offset: int) -> None:
    now = T0 + timedelta(seconds=offset)
    action = decide(at_step(step), CART, ANN, FLOW, POLICY, now)
    due = T0 + FLOW.steps[step].offset
    if now >= due:
        assert isinstance(action, Send) and action.step_index == step
    else:
        assert action == Wait(due, "not_due")
