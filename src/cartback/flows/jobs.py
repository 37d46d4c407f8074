"""Thin job handlers: the abandonment check and the journey step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts import timeline
from cartback.carts.models import Cart, CartStatus
from cartback.channels import EmailChannel
from cartback.contacts.models import Contact
from cartback.contacts.service import latest_consent, suppression
from cartback.content import EmailRenderer
from cartback.core.clock import Clock
from cartback.flows import service as flows
from cartback.flows.definition import FlowDefinition
from cartback.flows.engine import (
    Complete,
    ContactView,
    EnrollmentView,
    Exit,
    PolicyView,
    Send,
    Skip,
    Wait,
    decide,
)
from cartback.flows.models import Enrollment, EnrollmentStatus
from cartback.messages import service as messages
from cartback.messages.models import Message, MessageStatus
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
    # The abandonment check only writes in its session: it shares the claim's
    # transaction. The step commits its send intent midway, so it runs alone.
    registry.register(carts.ABANDON_JOB, lambda s, j: check_abandonment(s, j, deps), batched=True)
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


# The step's reads, built once (bound per call): see _lock_step and _read_step.
_LOCK_STEP = (
    select(Enrollment, Cart)
    .join(Cart, Cart.id == Enrollment.cart_id)
    .where(Enrollment.id == bindparam("enrollment_id"), Enrollment.store_id == bindparam("sid"))
    .with_for_update(of=Cart)
)
_CONSENT = latest_consent(Contact.store_id, Contact.id, "email").scalar_subquery()
_SUPPRESSED = suppression(Contact.store_id, "email", Contact.email).scalar_subquery()
_READ_STEP = (
    select(Contact, Store, Message, _CONSENT, _SUPPRESSED)
    .select_from(Contact)
    .join(Store, Store.id == Contact.store_id)
    .outerjoin(
        Message,
        and_(
            Message.enrollment_id == bindparam("enrollment_id"),
            Message.step_index == bindparam("step_index"),
        ),
    )
    .where(Contact.id == bindparam("contact_id"))
)
_ENROLLMENT_NOW = select(Enrollment.status, Enrollment.step_index).where(
    Enrollment.id == bindparam("enrollment_id")
)


def _lock_step(session: Session, job: ClaimedJob) -> tuple[Enrollment, Cart] | None:
    """The step's enrollment and its cart, the cart row locked (PostgreSQL ``FOR UPDATE
    OF carts``; on SQLite the transaction already holds the one writer)."""
    params = {"enrollment_id": job.payload["enrollment_id"], "sid": job.store_id}
    row = session.execute(_LOCK_STEP, params).first()
    return None if row is None else (row[0], row[1])


def _read_step(
    session: Session, enrollment: Enrollment, step_index: int
) -> tuple[Contact, Store, Message | None, ContactView]:
    """Everything else the step re-checks, in one statement read after the cart lock.

    After the lock, so that (PostgreSQL, READ COMMITTED) it sees whatever an order
    or an earlier run of this step committed while we waited for the cart.
    """
    params = {
        "enrollment_id": enrollment.id,
        "step_index": step_index,
        "contact_id": enrollment.contact_id,
    }
    contact, store, message, granted, reason = session.execute(_READ_STEP, params).one()
    view = ContactView(
        email=contact.email,
        orders_count=contact.orders_count,
        email_consent=granted,
        suppressed=reason if contact.email else None,
    )
    return contact, store, message, view


def run_step(session: Session, job: ClaimedJob, deps: JourneyDeps) -> Reschedule | None:
    now = deps.clock.now()
    step_index = int(job.payload["step_index"])
    locked = _lock_step(session, job)
    if locked is None:
        return None
    enrollment, cart = locked
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    if enrollment.step_index != step_index:  # a stale duplicate of a step already done
        return None
    contact, store, existing, contact_view = _read_step(session, enrollment, step_index)
    definition = flows.definition_by_id(session, enrollment.flow_id)
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
        contact_view,
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
    return _send(session, deps, enrollment, definition, cart, contact, store, existing, action)


def _send(
    session: Session,
    deps: JourneyDeps,
    enrollment: Enrollment,
    definition: FlowDefinition,
    cart: Cart,
    contact: Contact,
    store: Store,
    existing: Message | None,
    action: Send,
) -> Reschedule | None:
    now = deps.clock.now()
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
        existing=existing,
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
    status, index = session.execute(_ENROLLMENT_NOW, {"enrollment_id": enrollment.id}).one()
    if status == EnrollmentStatus.ACTIVE and index == action.step_index:
        flows.advance(session, enrollment, definition, now=deps.clock.now())
    return None
