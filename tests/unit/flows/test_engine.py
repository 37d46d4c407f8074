"""The journey's decisions, without a database: given a state and a moment, one action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    PolicyView,
    Send,
    Skip,
    Wait,
    decide,
    entry_refusal,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FLOW = default_flow()
CART = CartView(status="abandoned", value=5000, item_count=2, abandoned_at=T0)
ANN = ContactView(email="ann@example.com", orders_count=0, email_consent=None, suppressed=None)


def at_step(index: int) -> EnrollmentView:
    return EnrollmentView(step_index=index, started_at=T0)


def test_the_first_step_waits_until_one_hour_after_abandonment() -> None:
    assert decide(at_step(0), CART, ANN, FLOW, PolicyView(), T0 + timedelta(minutes=59)) == Wait(
        T0 + timedelta(hours=1), "not_due"
    )
    action = decide(at_step(0), CART, ANN, FLOW, PolicyView(), T0 + timedelta(hours=1))
    assert isinstance(action, Send)
    assert (action.step_index, action.step.template) == (0, "reminder")


def test_later_steps_are_timed_from_abandonment_not_from_the_previous_send() -> None:
    action = decide(at_step(1), CART, ANN, FLOW, PolicyView(), T0 + timedelta(hours=24))
    assert isinstance(action, Send) and action.step.template == "help"
    assert decide(at_step(2), CART, ANN, FLOW, PolicyView(), T0 + timedelta(hours=71)) == Wait(
        T0 + timedelta(hours=72), "not_due"
    )


def test_after_the_last_step_the_journey_completes() -> None:
    assert decide(at_step(3), CART, ANN, FLOW, PolicyView(), T0 + timedelta(days=9)) == Complete()


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
    assert decide(at_step(0), cart, ANN, FLOW, PolicyView(), T0 + timedelta(hours=1)) == Exit(
        reason
    )


def test_a_suppressed_or_withdrawn_contact_ends_the_journey_before_any_send() -> None:
    gone = ContactView("ann@example.com", 0, email_consent=None, suppressed="unsubscribed")
    withdrawn = ContactView("ann@example.com", 0, email_consent=False, suppressed=None)
    now = T0 + timedelta(hours=1)
    assert decide(at_step(0), CART, gone, FLOW, PolicyView(), now) == Exit("unsubscribed")
    assert decide(at_step(0), CART, withdrawn, FLOW, PolicyView(), now) == Exit("consent_withdrawn")


def test_explicit_consent_mode_skips_a_contact_who_never_opted_in() -> None:
    now = T0 + timedelta(hours=1)
    strict = PolicyView(require_consent=True)
    assert decide(at_step(0), CART, ANN, FLOW, strict, now) == Skip(0, "no_consent")
    opted_in = ContactView("ann@example.com", 0, email_consent=True, suppressed=None)
    assert isinstance(decide(at_step(0), CART, opted_in, FLOW, strict, now), Send)


def test_no_email_address_skips_an_email_step() -> None:
    phone_only = ContactView(None, 0, email_consent=None, suppressed=None)
    now = T0 + timedelta(hours=1)
    assert decide(at_step(0), CART, phone_only, FLOW, PolicyView(), now) == Skip(
        0, "no_email_address"
    )


def test_entry_rules() -> None:
    flow = FlowDefinition.model_validate(
        {
            "entry": {"min_value": 3000, "min_items": 2, "customer": "first_time"},
            "steps": [{"after": "1h"}],
        }
    )
    small = CartView("abandoned", 2999, 2, T0)
    one_item = CartView("abandoned", 9000, 1, T0)
    returning = ContactView("bo@example.com", 3, None, None)
    assert entry_refusal(flow, CART, ANN) is None
    assert entry_refusal(flow, small, ANN) == "below_min_value"
    assert entry_refusal(flow, one_item, ANN) == "below_min_items"
    assert entry_refusal(flow, CART, returning) == "not_first_time_customer"
    assert entry_refusal(flow, CART, None) == "no_reachable_contact"
    disabled = flow.model_copy(update={"enabled": False})
    assert entry_refusal(disabled, CART, ANN) == "flow_disabled"


def test_steps_must_be_in_time_order() -> None:
    with pytest.raises(ValueError, match="in order"):
        FlowDefinition.model_validate({"steps": [{"after": "2h"}, {"after": "1h"}]})


@given(
    step=st.integers(min_value=0, max_value=2),
    offset=st.integers(min_value=0, max_value=10 * 24 * 3600),
)
def test_a_step_is_sent_exactly_when_it_is_due(step: int, offset: int) -> None:
    now = T0 + timedelta(seconds=offset)
    action = decide(at_step(step), CART, ANN, FLOW, PolicyView(), now)
    due = T0 + FLOW.steps[step].offset
    if now >= due:
        assert isinstance(action, Send) and action.step_index == step
    else:
        assert action == Wait(due, "not_due")
