"""The journey's brain: a pure function from (enrollment, cart, contact facts, flow, policy,
now) to the next action. No I/O, so every rule is tested in microseconds; ``flows.service``
and ``flows.jobs`` load the inputs and carry the action out.

Order of the checks for a due step: exit rules (the cart bought, emptied, changed or
expired; every channel of the rest of the journey closed for good), the step's condition,
the contact-wide policy (unfulfilled order, journey cap, frequency budget, newsletter
today), then the step's channels in order (consent, suppression, address, sunset, US SMS
rules, quiet hours): the first allowed one is sent on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cartback.flows.definition import FlowDefinition, StepDef
from cartback.flows.policy import (
    Allow,
    ChannelState,
    Never,
    NotNow,
    PolicyInput,
    channel_verdict,
    contact_verdict,
)
from cartback.stores.schemas import ContactPolicy


@dataclass(frozen=True, slots=True)
class CartView:
    status: str  # active | abandoned | purchased | recovered | expired | cleared
    value: int
    item_count: int
    abandoned_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContactView:
    """What entry needs to know of a contact."""

    orders_count: int
    channels: Mapping[str, ChannelState]


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    step_index: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Send:
    step_index: int
    step: StepDef
    channel: str
    passed_over: dict[str, str] = field(default_factory=dict)  # channel -> why not


@dataclass(frozen=True, slots=True)
class Skip:
    step_index: int
    reason: str
    passed_over: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wait:
    until: datetime
    reason: str
    channel: str | None = None  # the channel the step waits for, if a policy holds it


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
    if contact is None or not _reachable(flow, contact.channels):
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
    return closed_for_good(flow, 0, contact.channels)


def _reachable(flow: FlowDefinition, channels: Mapping[str, ChannelState]) -> bool:
    used = {c for step in flow.steps for c in step.channel_order}
    return any(channels.get(c) is not None and channels[c].address for c in used)


def closed_for_good(
    flow: FlowDefinition, from_step: int, channels: Mapping[str, ChannelState]
) -> str | None:
    """The reason, when every channel the rest of the flow uses is closed by the shopper
    (unsubscribed, suppressed, consent withdrawn): nothing could ever be sent."""
    used = [c for step in flow.steps[from_step:] for c in step.channel_order]
    reasons = [_closed(channels.get(c)) for c in dict.fromkeys(used)]
    if reasons and all(reasons):
        return reasons[0]
    return None


def _closed(state: ChannelState | None) -> str | None:
    if state is None or state.address is None:
        return None  # unreachable is not a refusal: an address may still come
    if state.suppressed:
        return state.suppressed
    return "consent_withdrawn" if state.consent is False else None


def due_at(flow: FlowDefinition, enrollment: EnrollmentView, step_index: int) -> datetime:
    return enrollment.started_at + flow.steps[step_index].offset


def decide(
    enrollment: EnrollmentView,
    cart: CartView,
    facts: PolicyInput,
    flow: FlowDefinition,
    policy: ContactPolicy,
    now: datetime,
    *,
    previous_sent: bool | None = None,
    tried: frozenset[str] = frozenset(),
) -> Action:
    """What to do now for this enrollment.

    ``previous_sent``: whether the step before sent a message (for its ``condition``);
    ``tried``: channels of this step that already failed for good (the fallback moves on).
    """
    if cart.status != "abandoned":
        return Exit(_CART_EXITS.get(cart.status, f"cart_{cart.status}"))
    if enrollment.step_index >= len(flow.steps):
        return Complete()
    closed = closed_for_good(flow, enrollment.step_index, facts.channels)
    if closed is not None:
        return Exit(closed)
    index = enrollment.step_index
    step = flow.steps[index]
    when = due_at(flow, enrollment, index)
    if when > now and not tried:
        return Wait(when, "not_due")
    if step.condition == "previous_not_sent" and previous_sent:
        return Skip(index, "previous_step_sent")
    if step.condition == "previous_sent" and not previous_sent:
        return Skip(index, "previous_step_not_sent")
    held = contact_verdict(facts, policy, now)
    if isinstance(held, Never):
        return Skip(index, held.reason)
    if isinstance(held, NotNow):
        return Wait(held.until, held.reason)
    return choose_channel(index, step, facts, policy, now, tried)


def choose_channel(
    index: int,
    step: StepDef,
    facts: PolicyInput,
    policy: ContactPolicy,
    now: datetime,
    tried: frozenset[str] = frozenset(),
) -> Send | Skip | Wait:
    """The first of the step's channels the policy allows now.

    A channel that is allowed later (quiet hours) holds the step until then: the store
    put it first because it prefers it. Channels refused for good are passed over.
    """
    passed_over: dict[str, str] = {}
    for channel in step.channel_order:
        if channel in tried:
            passed_over[channel] = "failed"
            continue
        verdict = channel_verdict(channel, facts, policy, now)
        if isinstance(verdict, Allow):
            return Send(index, step, channel, passed_over)
        if isinstance(verdict, NotNow):
            return Wait(verdict.until, verdict.reason, channel)
        passed_over[channel] = verdict.reason
    return Skip(index, "no_channel_allowed", passed_over)
