"""Thin job handlers: the abandonment check, the journey step, the fallback after a
delivery failure, and the team alert."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts import timeline
from cartback.carts.models import Cart, CartStatus
from cartback.channels import PermanentSendError, TeamAlert, TransientSendError, WebhookAlert
from cartback.contacts.models import Contact, PushSubscription
from cartback.content import format_money
from cartback.core.clock import Clock
from cartback.flows import service as flows
from cartback.flows.definition import FlowDefinition
from cartback.flows.engine import (
    Complete,
    EnrollmentView,
    Exit,
    Send,
    Skip,
    Wait,
    choose_channel,
    decide,
)
from cartback.flows.facts import REACHED, StepFacts, step_facts
from cartback.flows.models import Enrollment, EnrollmentStatus
from cartback.messages import service as messages
from cartback.messages.compose import Composer, Recipient, StepMessage
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
    composer: Composer
    # the store's team-alert webhook (``WebhookAlert``); None when it has none configured
    team_alert: Callable[[str, StoreSettings], WebhookAlert | None]


def register(registry: Registry, deps: JourneyDeps) -> None:
    # The abandonment check only writes in its session: it shares the claim's
    # transaction. The step commits its send intent midway, so it runs alone.
    registry.register(carts.ABANDON_JOB, lambda s, j: check_abandonment(s, j, deps), batched=True)
    registry.register(flows.STEP_JOB, lambda s, j: run_step(s, j, deps))
    registry.register(flows.FALLBACK_JOB, lambda s, j: run_step(s, j, deps, fallback=True))
    registry.register(flows.ALERT_JOB, lambda s, j: send_team_alert(s, j, deps))


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


# The step's enrollment and its cart, the cart row locked (PostgreSQL ``FOR UPDATE OF
# carts``; on SQLite the transaction already holds the one writer).
_LOCK_STEP = (
    select(Enrollment, Cart)
    .join(Cart, Cart.id == Enrollment.cart_id)
    .where(Enrollment.id == bindparam("enrollment_id"), Enrollment.store_id == bindparam("sid"))
    .with_for_update(of=Cart)
)
_ENROLLMENT_NOW = select(Enrollment.status, Enrollment.step_index).where(
    Enrollment.id == bindparam("enrollment_id")
)


@dataclass
class _Step:
    """One run of one step: what was loaded under the cart lock."""

    session: Session
    deps: JourneyDeps
    enrollment: Enrollment
    cart: Cart
    contact: Contact
    store: Store
    settings: StoreSettings
    definition: FlowDefinition
    index: int
    facts: StepFacts
    fallback: bool

    def note(self, kind: str, **data: object) -> None:
        timeline.record(
            self.session,
            store_id=self.cart.store_id,
            cart_id=self.cart.id,
            at=self.deps.clock.now(),
            kind=kind,
            step=self.index,
            **data,
        )

    def done(self) -> None:
        """The step is decided: schedule the next one (not for a late fallback, whose
        journey has already moved on), unless an order ended the journey meanwhile."""
        status, current = self.session.execute(
            _ENROLLMENT_NOW, {"enrollment_id": self.enrollment.id}
        ).one()
        if status == EnrollmentStatus.ACTIVE and current == self.index:
            flows.advance(self.session, self.enrollment, self.definition, now=self.deps.clock.now())


def run_step(
    session: Session, job: ClaimedJob, deps: JourneyDeps, *, fallback: bool = False
) -> Reschedule | None:
    now = deps.clock.now()
    index = int(job.payload["step_index"])
    row = session.execute(
        _LOCK_STEP, {"enrollment_id": job.payload["enrollment_id"], "sid": job.store_id}
    ).first()
    if row is None:
        return None
    enrollment, cart = row[0], row[1]
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    if enrollment.step_index != index and not fallback:  # a stale duplicate of a done step
        return None
    contact = session.get(Contact, enrollment.contact_id)
    store = session.get(Store, enrollment.store_id)
    assert contact is not None and store is not None
    settings = store_settings(store)
    definition = flows.definition_by_id(session, enrollment.flow_id)
    facts = step_facts(
        session,
        enrollment=enrollment,
        cart=cart,
        contact=contact,
        settings=settings,
        step_index=index,
        now=now,
    )
    step = _Step(
        session,
        deps,
        enrollment,
        cart,
        contact,
        store,
        settings,
        definition,
        index,
        facts,
        fallback,
    )
    return _run(step, now)


def _run(step: _Step, now: datetime) -> Reschedule | None:
    found = step.facts.messages.values()
    interrupted = [m for m in found if m.status == MessageStatus.SENDING]
    for message in interrupted:
        messages.resolve_interrupted(step.session, message, now=now)
    if interrupted or any(m.status in REACHED for m in found):
        step.done()  # this step already may have reached the shopper: never again
        return None
    action = decide(
        EnrollmentView(step.index, step.enrollment.started_at),
        flows.cart_view(step.cart),
        step.facts.policy,
        step.definition,
        step.settings.policy,
        now,
        previous_sent=step.facts.previous_sent,
        tried=step.facts.tried if step.fallback or step.facts.tried else frozenset(),
    )
    if isinstance(action, Exit):
        _cancel_queued(step, action.reason, now)
        flows.end(
            step.session,
            step.enrollment,
            status=EnrollmentStatus.EXITED,
            reason=action.reason,
            now=now,
        )
        return None
    if isinstance(action, Complete):
        if not step.fallback:
            flows.end(
                step.session,
                step.enrollment,
                status=EnrollmentStatus.COMPLETED,
                reason=None,
                now=now,
            )
        return None
    if isinstance(action, Wait):
        return _wait(step, action)
    if isinstance(action, Skip):
        step.note("step.skipped", reason=action.reason, **_passed(action.passed_over))
        step.done()
        return None
    return _send(step, action)


def _wait(step: _Step, action: Wait) -> Reschedule:
    if action.reason != "not_due":
        data: dict[str, object] = {"reason": action.reason, "until": action.until.isoformat()}
        if action.channel:
            data["channel"] = action.channel
        step.note("step.deferred", **data)
    return Reschedule(action.until, action.reason)


def _passed(passed_over: dict[str, str]) -> dict[str, object]:
    return {"passed_over": passed_over} if passed_over else {}


def _cancel_queued(step: _Step, reason: str, now: datetime) -> None:
    for message in step.facts.messages.values():
        if message.status == MessageStatus.QUEUED:
            messages.set_status(
                step.session,
                message,
                MessageStatus.FAILED,
                now=now,
                code="cancelled",
                reason=reason,
            )


def _send(step: _Step, action: Send) -> Reschedule | None:
    """Send on the chosen channel; after a permanent failure, on the step's next allowed
    channel, at once (each channel once per step)."""
    tried = set(step.facts.tried)
    while True:
        if action.passed_over:
            step.note("step.channel_chosen", channel=action.channel, **_passed(action.passed_over))
        outcome = _send_on(step, action)
        if outcome.outcome == messages.Outcome.THROTTLED:
            delay = outcome.retry_after or 1.0
            return Reschedule(
                step.deps.clock.now() + timedelta(seconds=delay), "provider rate limit"
            )
        if outcome.outcome == messages.Outcome.RETRY:
            assert outcome.message is not None
            delay = outcome.retry_after or backoff(outcome.message.attempts).total_seconds()
            return Reschedule(
                step.deps.clock.now() + timedelta(seconds=delay),
                "temporary send failure",
                count_attempt=False,
            )
        if outcome.outcome not in (messages.Outcome.FAILED, messages.Outcome.NOT_RENDERED):
            step.done()
            return None
        tried.add(action.channel)
        now = step.deps.clock.now()
        step_def = step.definition.steps[step.index]
        nxt = choose_channel(
            step.index, step_def, step.facts.policy, step.settings.policy, now, frozenset(tried)
        )
        if isinstance(nxt, Wait):
            step.note("step.fallback", failed=action.channel, next=nxt.channel)
            return _wait(step, nxt)
        if isinstance(nxt, Skip):
            step.note("step.skipped", reason="every_channel_failed", **_passed(nxt.passed_over))
            step.done()
            return None
        step.note("step.fallback", failed=action.channel, next=nxt.channel)
        action = Send(nxt.step_index, nxt.step, nxt.channel)


def _send_on(step: _Step, action: Send) -> messages.SendOutcome:
    deps = step.deps
    definition = action.step
    message = StepMessage(
        enrollment_id=step.enrollment.id,
        step_index=action.step_index,
        channel=action.channel,
        template=definition.template,
        subject=definition.subject,
        whatsapp_template=definition.whatsapp_template,
        whatsapp_language=definition.whatsapp_language,
    )
    state = step.facts.policy.channels[action.channel]
    assert state.address is not None
    to = Recipient(
        contact=step.contact,
        address=state.address,
        country=step.facts.reach.country,
        push=step.facts.reach.push,
    )

    def gone(subscription: PushSubscription) -> None:
        step.session.execute(delete(PushSubscription).where(PushSubscription.id == subscription.id))

    return messages.send_step(
        step.session,
        step=message,
        cart=step.cart,
        contact=step.contact,
        prepare=lambda message_id: deps.composer.prepare(
            message_id, message, step.cart, to, step.store.name, step.settings, gone
        ),
        limiter=deps.composer.senders.limiter(step.store.id, step.settings, action.channel),
        now=deps.clock.now(),
        existing=step.facts.messages.get(action.channel),
    )


def send_team_alert(session: Session, job: ClaimedJob, deps: JourneyDeps) -> Reschedule | None:
    """Tell the store's team of a valuable cart (abandoned: "call this shopper"; or
    recovered). Temporary failures retry with backoff (the job's attempts)."""
    now = deps.clock.now()
    cart = session.execute(
        select(Cart).where(Cart.id == job.payload["cart_id"], Cart.store_id == job.store_id)
    ).scalar_one_or_none()
    store = session.get(Store, job.store_id)
    if cart is None or store is None:
        return None
    settings = store_settings(store)
    sender = deps.team_alert(store.id, settings)
    if sender is None:
        return None
    contact = session.get(Contact, cart.contact_id) if cart.contact_id else None
    locale = (contact.locale if contact else None) or settings.locale
    alert = TeamAlert(
        alert_id=job.key.replace(":", "-"),
        kind="cart_recovered" if job.payload["kind"] == "recovered" else "cart_abandoned",
        store_name=store.name,
        cart_id=cart.external_id,
        cart_value=cart.value,
        currency=cart.currency,
        value_text=format_money(cart.value, cart.currency, locale),
        items=tuple(
            (
                str(item.get("name", item.get("sku", ""))),
                int(item.get("quantity", 1)),
                format_money(
                    int(item.get("unit_price", 0)) * int(item.get("quantity", 1)),
                    cart.currency,
                    locale,
                ),
            )
            for item in cart.items
        ),
        occurred_at=now,
        contact_name=contact.first_name if contact else None,
        contact_email=contact.email if contact else None,
        contact_phone=contact.phone if contact else None,
        cart_url=cart.restore_url,
    )
    kind = f"alert.{job.payload['kind']}"
    try:
        result = sender.send(alert)
    except TransientSendError as exc:
        if job.attempts >= job.max_attempts:
            _note_alert(session, cart, now, f"{kind}.failed", code=exc.code, reason=exc.reason)
            return None
        delay = exc.retry_after or backoff(job.attempts).total_seconds()
        return Reschedule(now + timedelta(seconds=delay), exc.code, count_attempt=True)
    except PermanentSendError as exc:
        _note_alert(session, cart, now, f"{kind}.failed", code=exc.code, reason=exc.reason)
        return None
    _note_alert(session, cart, now, f"{kind}.sent", provider=result.provider)
    return None


def _note_alert(session: Session, cart: Cart, now: datetime, kind: str, **data: object) -> None:
    timeline.record(session, store_id=cart.store_id, cart_id=cart.id, at=now, kind=kind, **data)
