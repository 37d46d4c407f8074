"""Thin job handlers: the abandonment check, the journey step, the fallback after a
delivery failure, and the team alert."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, Text, bindparam, delete, literal_column, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

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
    due_at,
)
from cartback.flows.facts import REACHED, StepFacts, step_facts
from cartback.flows.models import Enrollment, EnrollmentStatus
from cartback.messages import service as messages
from cartback.messages.compose import Composer, Recipient, StepMessage
from cartback.messages.models import MessageStatus
from cartback.queue import ClaimedJob, Deliver, Delivered, Registry, Reschedule, enqueue
from cartback.queue.backoff import backoff
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import settings_from_json, store_settings

log = logging.getLogger("cartback.flows")

EXPIRE_BATCH = 500  # carts closed per maintenance run; bounded so a run stays short


@dataclass(frozen=True)
class JourneyDeps:
    clock: Clock
    composer: Composer
    # the store's team-alert webhook (``WebhookAlert``); None when it has none configured
    team_alert: Callable[[str, StoreSettings], WebhookAlert | None]


def register(registry: Registry, deps: JourneyDeps) -> None:
    # These only write in their session and never commit, so the jobs of one claim
    # share transactions. A step hands its provider call to the worker (Deliver), which
    # commits the intents first and makes the calls of a round at the same time.
    registry.register(carts.ABANDON_JOB, lambda s, j: check_abandonment(s, j, deps), batched=True)
    registry.register(flows.STEP_JOB, lambda s, j: run_step(s, j, deps), batched=True)
    registry.register(
        flows.FALLBACK_JOB, lambda s, j: run_step(s, j, deps, fallback=True), batched=True
    )
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


# The step's enrollment, its cart, contact and store in one read, the cart row locked
# (PostgreSQL ``FOR UPDATE OF carts``; on SQLite the transaction already holds the one
# writer). The store's settings come as their JSON text: parsed once per text and
# process (stores.service.settings_from_json), not on every step.
_LOCK_STEP = (
    select(Enrollment, Cart, Contact, Store.name, sql_cast(Store.settings, Text))
    .join(Cart, Cart.id == Enrollment.cart_id)
    .join(Contact, Contact.id == Enrollment.contact_id)
    .join(Store, Store.id == Enrollment.store_id)
    .where(Enrollment.id == bindparam("enrollment_id"), Enrollment.store_id == bindparam("sid"))
    .with_for_update(of=Cart)
)
_ENROLLMENTS = cast(Table, Enrollment.__table__)
# The step moves the journey on only if it is still where this run found it: active, at
# this step. An order or an unsubscribe committed while the provider was answering has
# ended the journey, and then nothing moves (the guard replaces a re-read).
_ADVANCE = (
    update(_ENROLLMENTS)
    .where(
        _ENROLLMENTS.c.id == bindparam("enrollment_id"),
        _ENROLLMENTS.c.status == literal_column(f"'{EnrollmentStatus.ACTIVE.value}'"),
        _ENROLLMENTS.c.step_index == bindparam("at_step"),
    )
    .values(step_index=bindparam("next_step"), next_due_at=bindparam("next_due"))
)


@dataclass
class _Step:
    """One run of one step: what was loaded under the cart lock."""

    session: Session
    deps: JourneyDeps
    enrollment: Enrollment
    cart: Cart
    contact: Contact
    store_name: str
    settings: StoreSettings
    definition: FlowDefinition
    index: int
    facts: StepFacts
    fallback: bool

    def note(self, kind: str, **data: object) -> None:
        messages.note(
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
        nxt = self.index + 1
        if nxt >= len(self.definition.steps):
            self._last_done()
            return
        now = self.deps.clock.now()
        enrollment = self.enrollment
        when = due_at(self.definition, EnrollmentView(nxt, enrollment.started_at), nxt)
        moved = self.session.connection().execute(
            _ADVANCE,
            {
                "enrollment_id": enrollment.id,
                "at_step": self.index,
                "next_step": nxt,
                "next_due": when,
            },
        )
        if moved.rowcount != 1:
            return
        # the loaded enrollment follows, without becoming dirty (no second UPDATE)
        set_committed_value(enrollment, "step_index", nxt)
        set_committed_value(enrollment, "next_due_at", when)
        enqueue(
            self.session,
            store_id=enrollment.store_id,
            kind=flows.STEP_JOB,
            key=flows.step_key(enrollment.id, nxt),
            run_at=max(when, now),
            payload={"enrollment_id": enrollment.id, "step_index": nxt},
            now=now,
        )

    def _last_done(self) -> None:
        """The journey's last step is decided: the journey completes (flows.advance).

        Read again (this session may not be the one that loaded the enrollment, and an
        order may have ended the journey while the provider was answering)."""
        enrollment = self.session.get(Enrollment, self.enrollment.id, populate_existing=True)
        if enrollment is None:
            return
        if enrollment.status == EnrollmentStatus.ACTIVE and enrollment.step_index == self.index:
            flows.advance(self.session, enrollment, self.definition, now=self.deps.clock.now())


def run_step(
    session: Session, job: ClaimedJob, deps: JourneyDeps, *, fallback: bool = False
) -> Reschedule | Deliver | None:
    now = deps.clock.now()
    index = int(job.payload["step_index"])
    row = session.execute(
        _LOCK_STEP, {"enrollment_id": job.payload["enrollment_id"], "sid": job.store_id}
    ).first()
    if row is None:
        return None
    enrollment, cart, contact, store_name, raw_settings = row
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return None
    if enrollment.step_index != index and not fallback:  # a stale duplicate of a done step
        return None
    settings = settings_from_json(enrollment.store_id, raw_settings)
    definition = flows.definition_by_id(session, enrollment.flow_id)
    steps = definition.steps
    facts = step_facts(
        session,
        enrollment=enrollment,
        cart=cart,
        contact=contact,
        settings=settings,
        step_index=index,
        channels=steps[index].channel_order if index < len(steps) else (),
        now=now,
    )
    step = _Step(
        session,
        deps,
        enrollment,
        cart,
        contact,
        store_name,
        settings,
        definition,
        index,
        facts,
        fallback,
    )
    return _run(step, now)


def _run(step: _Step, now: datetime) -> Reschedule | Deliver | None:
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
    return _send(step, action, set(step.facts.tried))


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
            messages.record_status(
                step.session,
                message,
                MessageStatus.FAILED,
                now=now,
                code="cancelled",
                reason=reason,
            )


def _send(step: _Step, action: Send, tried: set[str]) -> Reschedule | Deliver | None:
    """Send on the chosen channel: record the intent and hand the provider call to the
    worker (:class:`Deliver`: it commits the intent first); after a permanent failure,
    the step's next allowed channel is tried at once (each channel once per step)."""
    if action.passed_over:
        step.note("step.channel_chosen", channel=action.channel, **_passed(action.passed_over))
    gone: list[str] = []  # push subscriptions the push service dropped during the call
    begun = _begin_send(step, action, gone)
    if isinstance(begun, messages.SendOutcome):
        return _sent(step, action, tried, begun)
    intent = begun

    def then(session: Session, delivered: Delivered) -> Reschedule | Deliver | None:
        later = replace(step, session=session)
        if gone:
            session.connection().execute(_DELETE_PUSH, {"ids": gone})
        return _sent(later, action, tried, messages.finish_send(session, intent, delivered))

    return Deliver(intent.prepared.deliver, then)


_DELETE_PUSH = delete(PushSubscription).where(
    PushSubscription.id.in_(bindparam("ids", expanding=True))
)


def _sent(
    step: _Step, action: Send, tried: set[str], outcome: messages.SendOutcome
) -> Reschedule | Deliver | None:
    """What a send's outcome means for the step."""
    if outcome.outcome == messages.Outcome.THROTTLED:
        delay = outcome.retry_after or 1.0
        return Reschedule(step.deps.clock.now() + timedelta(seconds=delay), "provider rate limit")
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
    tried = tried | {action.channel}
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
    return _send(step, Send(nxt.step_index, nxt.step, nxt.channel), tried)


def _begin_send(
    step: _Step, action: Send, gone: list[str]
) -> messages.Intent | messages.SendOutcome:
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

    def on_gone(subscription: PushSubscription) -> None:
        gone.append(subscription.id)  # deleted with the outcome, not during the call

    return messages.begin_send(
        step.session,
        step=message,
        cart=step.cart,
        contact=step.contact,
        prepare=lambda message_id: deps.composer.prepare(
            message_id, message, step.cart, to, step.store_name, step.settings, on_gone
        ),
        limiter=deps.composer.senders.limiter(step.cart.store_id, step.settings, action.channel),
        now=deps.clock.now(),
        existing=step.facts.messages.get(action.channel),
    )


def send_team_alert(
    session: Session, job: ClaimedJob, deps: JourneyDeps
) -> Reschedule | Deliver | None:
    """Tell the store's team of a valuable cart (abandoned: "call this shopper"; or
    recovered). Temporary failures retry with backoff (the job's attempts). The webhook
    call is made with no transaction open (:class:`Deliver`): a slow team endpoint must
    not hold the database (on SQLite, the one writer) for its timeout."""
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

    def then(session: Session, delivered: Delivered) -> Reschedule | None:
        exc = delivered.error
        if exc is None:
            _note_alert(session, cart, now, f"{kind}.sent", provider=delivered.value.provider)
            return None
        if isinstance(exc, TransientSendError):
            if job.attempts >= job.max_attempts:
                _note_alert(session, cart, now, f"{kind}.failed", code=exc.code, reason=exc.reason)
                return None
            delay = exc.retry_after or backoff(job.attempts).total_seconds()
            return Reschedule(now + timedelta(seconds=delay), exc.code, count_attempt=True)
        if isinstance(exc, PermanentSendError):
            _note_alert(session, cart, now, f"{kind}.failed", code=exc.code, reason=exc.reason)
            return None
        raise exc

    return Deliver(lambda: sender.send(alert), then)


def _note_alert(session: Session, cart: Cart, now: datetime, kind: str, **data: object) -> None:
    timeline.record(session, store_id=cart.store_id, cart_id=cart.id, at=now, kind=kind, **data)
