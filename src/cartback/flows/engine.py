"""The journey's brain: a pure function from (enrollment, cart, contact, flow, now) to
the next action. No I/O, so every rule is tested in microseconds; ``flows.service``
loads the inputs and carries the action out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cartback.flows.definition import FlowDefinition, StepDef


@dataclass(frozen=True, slots=True)
class CartView:
    status: str  # active | abandoned | purchased | recovered | expired | cleared
    value: int
    item_count: int
    abandoned_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactView:
    email: str | None
    orders_count: int
    email_consent: bool | None  # the newest consent ledger entry; None = never asked
    suppressed: str | None  # the suppression reason for the email address, if any


@dataclass(frozen=True, slots=True)
class PolicyView:
    require_consent: bool = False  # EU-style: send only after an explicit opt-in


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    step_index: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Send:
    step_index: int
    step: StepDef


@dataclass(frozen=True, slots=True)
class Skip:
    step_index: int
    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Exit:
    reason: str


@dataclass(frozen=True, slots=True)
class Complete:
    pass


Action = Send | Skip | Wait | Exit | Complete

_CART_EXITS = {
    "purchased": "purchased",
    "recovered": "purchased",
    "cleared": "cart_emptied",
    "expired": "cart_expired",
    "active": "cart_changed",
}


def entry_refusal(flow: FlowDefinition, cart: CartView, contact: ContactView | None) -> str | None:
    """Why this cart does not enter the flow, or None when it does."""
    if not flow.enabled:
        return "flow_disabled"
    if contact is None or not contact.email:
        return "no_reachable_contact"
    rules = flow.entry
    if cart.item_count < rules.min_items:
        return "below_min_items"
    if cart.value < rules.min_value:
        return "below_min_value"
    if rules.customer == "first_time" and contact.orders_count > 0:
        return "not_first_time_customer"
    if rules.customer == "returning" and contact.orders_count == 0:
        return "not_returning_customer"
    return None


def due_at(flow: FlowDefinition, enrollment: EnrollmentView, step_index: int) -> datetime:
    return enrollment.started_at + flow.steps[step_index].offset


def decide(
    enrollment: EnrollmentView,
    cart: CartView,
    contact: ContactView,
    flow: FlowDefinition,
    policy: PolicyView,
    now: datetime,
) -> Action:
    """What to do now for this enrollment. Exit rules first, then the step's policies."""
    if cart.status != "abandoned":
        return Exit(_CART_EXITS.get(cart.status, f"cart_{cart.status}"))
    if contact.suppressed:
        return Exit(contact.suppressed)
    if contact.email_consent is False:
        return Exit("consent_withdrawn")
    if enrollment.step_index >= len(flow.steps):
        return Complete()
    step = flow.steps[enrollment.step_index]
    when = due_at(flow, enrollment, enrollment.step_index)
    if when > now:
        return Wait(when, "not_due")
    if step.channel_order[0] == "email" and not contact.email:
        return Skip(enrollment.step_index, "no_email_address")
    if policy.require_consent and contact.email_consent is None:
        return Skip(enrollment.step_index, "no_consent")
    return Send(enrollment.step_index, step)
