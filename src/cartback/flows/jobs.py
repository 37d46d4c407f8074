"""Thin job handlers: the abandonment check and the journey step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts import timeline
from cartback.carts.models import Cart, CartStatus
from cartback.channels import EmailChannel
from cartback.contacts.models import Contact
from cartback.content import EmailRenderer
from cartback.core.clock import Clock
from cartback.flows import service as flows
from cartback.flows.definition import FlowDefinition
from cartback.flows.engine import (
    Complete,
    EnrollmentView,
    Exit,
    PolicyView,
    Send,
    Skip,
    Wait,
    decide,
)
from cartback.flows.models import Enrollment, EnrollmentStatus, Flow
from cartback.messages import service as messages
from cartback.messages.models import MessageStatus
from cartback.queue import ClaimedJob, Registry, Reschedule
from cartback.queue.backoff import backoff
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import store_settings

log = logging.getLogger("cartback.flows")

EXPIRE_BATCH = 500  # carts closed per maintenance run; bounded so a run stays short


@dataclass(frozen=True)
class JourneyDeps:
    clock: Clock
    renderer: EmailRenderer
    links: messages.Links
    email_channel: Callable[[StoreSettings], EmailChannel]


def register(registry: Registry, deps: JourneyDeps) -> None:
    registry.register(carts.ABANDON_JOB, lambda s, j: check_abandonment(s, j, deps))
    registry.register(flows.STEP_JOB, lambda s, j: run_step(s, j, deps))


def end_expired(session: Session, expired: list[Cart], now: datetime) -> None:
    """Expired carts end their journeys at once, not when their next step comes due."""
    for cart in expired:
        flows.exit_journeys(
            session, store_id=cart.store_id, cart_id=cart.id, reason="cart_expired", now=now
        )


def check_abandonment(session: Session, job: ClaimedJob, deps: JourneyDeps) -> Reschedule | None:
    now = deps.clock.now()
    cart = session.execute(
        select(Cart)
        .where(Cart.id == job.payload["cart_id"], Cart.store_id == job.store_id)
        .with_for_update()
    ).scalar_one_or_none()
    if cart is None or cart.status != CartStatus.ACTIVE or cart.abandon_at is None:
        return None
    if cart.abandon_at > now:  # the shopper came back since this check was set
        return Reschedule(cart.abandon_at, "activity since")
    carts.mark_abandoned(session, cart, at=cart.abandon_at, now=now)
    flows.enroll(session, cart=cart, now=now)
    return None


def run_step(session: Session, job: ClaimedJob, deps: JourneyDeps) -> Reschedule | None:
    now = deps.clock.now()
    enrollment = session.execute(
        select(Enrollment).where(
            Enrollment.id == job.payload["enrollment_id"], Enrollment.store_id == job.store_id
        )
    ).scalar_one_or_none()
    step_index = int(job.payload["step_index"])
    if enrollment is None or enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    if enrollment.step_index != step_index:  # a stale duplicate of a step already done
        return None
    flow = session.get(Flow, enrollment.flow_id)
    cart = session.execute(
        select(Cart).where(Cart.id == enrollment.cart_id).with_for_update()
    ).scalar_one()
    contact = session.get(Contact, enrollment.contact_id)
    assert flow is not None and contact is not None
    definition = flows.definition_of(flow)
    existing = messages.find(session, enrollment.id, step_index)
    if existing is not None and existing.status == MessageStatus.SENDING:
        messages.resolve_interrupted(session, existing, now=now)
        flows.advance(session, enrollment, definition, now=now)
        return None
    if existing is not None and existing.status != MessageStatus.QUEUED:
        flows.advance(session, enrollment, definition, now=now)
        return None
    action = decide(
        EnrollmentView(enrollment.step_index, enrollment.started_at),
        flows.cart_view(cart),
        flows.contact_view(session, contact),
        definition,
        PolicyView(),
        now,
    )
    if isinstance(action, Exit):
        if existing is not None:
            messages.set_status(
                session,
                existing,
                MessageStatus.FAILED,
                now=now,
                code="cancelled",
                reason=action.reason,
            )
        flows.end(
            session, enrollment, status=EnrollmentStatus.EXITED, reason=action.reason, now=now
        )
        return None
    if isinstance(action, Complete):
        flows.end(session, enrollment, status=EnrollmentStatus.COMPLETED, reason=None, now=now)
        return None
    if isinstance(action, Wait):
        return Reschedule(action.until, action.reason)
    if isinstance(action, Skip):
        timeline.record(
            session,
            store_id=cart.store_id,
            cart_id=cart.id,
            at=now,
            kind="step.skipped",
            step=action.step_index,
            reason=action.reason,
        )
        flows.advance(session, enrollment, definition, now=now)
        return None
    assert isinstance(action, Send)
    return _send(session, job, deps, enrollment, definition, cart, contact, action)


def _send(
    session: Session,
    job: ClaimedJob,
    deps: JourneyDeps,
    enrollment: Enrollment,
    definition: FlowDefinition,
    cart: Cart,
    contact: Contact,
    action: Send,
) -> Reschedule | None:
    now = deps.clock.now()
    store = session.get(Store, cart.store_id)
    assert store is not None
    settings = store_settings(store)
    outcome = messages.send_email_step(
        session,
        step=messages.EmailStep(
            enrollment.id, action.step_index, action.step.template, action.step.subject
        ),
        cart=cart,
        contact=contact,
        store_name=store.name,
        settings=settings,
        renderer=deps.renderer,
        channel=deps.email_channel(settings),
        links=deps.links,
        now=now,
    )
    if outcome.outcome == messages.Outcome.RETRY:
        delay = outcome.retry_after or backoff(outcome.message.attempts).total_seconds()
        return Reschedule(
            deps.clock.now() + timedelta(seconds=delay),
            "temporary send failure",
            count_attempt=False,
        )
    # the step is decided; re-read the enrollment (the intent commit expired nothing,
    # but an order may have ended it meanwhile — then there is nothing to schedule)
    session.refresh(enrollment)
    if enrollment.status == EnrollmentStatus.ACTIVE and enrollment.step_index == action.step_index:
        flows.advance(session, enrollment, definition, now=deps.clock.now())
    return None
