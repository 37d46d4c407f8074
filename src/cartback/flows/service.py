"""Flows and enrollments: which version a store runs, who enters, who leaves."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartback.carts import timeline
from cartback.carts.models import Cart
from cartback.contacts.models import Contact
from cartback.core.ids import new_id
from cartback.flows.definition import FlowDefinition, default_flow
from cartback.flows.engine import CartView, ContactView, EnrollmentView, due_at, entry_refusal
from cartback.flows.facts import reach
from cartback.flows.models import Enrollment, EnrollmentStatus, Flow
from cartback.queue import cancel, enqueue
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings

STEP_JOB = "flow.step"
FALLBACK_JOB = "flow.fallback"
ALERT_JOB = "flow.team_alert"


def step_key(enrollment_id: str, step_index: int) -> str:
    return f"step:{enrollment_id}:{step_index}"


def set_flow(session: Session, *, store_id: str, definition: FlowDefinition, now: datetime) -> Flow:
    """Save a new version; running enrollments keep the version they started with."""
    latest = session.execute(
        select(func.max(Flow.version)).where(Flow.store_id == store_id)
    ).scalar_one()
    flow = Flow(
        id=new_id(),
        store_id=store_id,
        version=(latest or 0) + 1,
        name=definition.name,
        definition=definition.model_dump(mode="json", exclude_none=True),
        created_at=now,
    )
    session.add(flow)
    session.flush()
    return flow


def current_flow(session: Session, *, store_id: str, now: datetime) -> Flow:
    """The store's newest flow version; the built-in default when it has none yet."""
    flow = (
        session.execute(
            select(Flow).where(Flow.store_id == store_id).order_by(Flow.version.desc()).limit(1)
        )
        .scalars()
        .first()
    )
    return flow or set_flow(session, store_id=store_id, definition=default_flow(), now=now)


class _DefinitionCache:
    """Parsed flow definitions by flow id: a bounded LRU, shared by the worker threads.

    Safe because a flow row never changes once written (a change is a new version,
    a new row with a new id), so a cached definition can never go stale. Callers
    must treat the returned definition as read-only.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[str, FlowDefinition] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, flow_id: str) -> FlowDefinition | None:
        with self._lock:
            found = self._items.get(flow_id)
            if found is not None:
                self._items.move_to_end(flow_id)
            return found

    def put(self, flow_id: str, definition: FlowDefinition) -> None:
        with self._lock:
            self._items[flow_id] = definition
            self._items.move_to_end(flow_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_definitions = _DefinitionCache()


def definition_of(flow: Flow) -> FlowDefinition:
    """The flow's parsed definition (validated once per flow version and process)."""
    found = _definitions.get(flow.id)
    if found is None:
        found = FlowDefinition.model_validate(flow.definition)
        _definitions.put(flow.id, found)
    return found


def definition_by_id(session: Session, flow_id: str) -> FlowDefinition:
    """The definition of flow ``flow_id``, read from the database only on a cache miss."""
    found = _definitions.get(flow_id)
    if found is not None:
        return found
    flow = session.get(Flow, flow_id)
    assert flow is not None, f"flow {flow_id} not found"
    return definition_of(flow)


def cart_view(cart: Cart) -> CartView:
    return CartView(
        status=cart.status,
        value=cart.value,
        item_count=cart.item_count,
        abandoned_at=cart.abandoned_at,
    )


def enroll(session: Session, *, cart: Cart, now: datetime) -> Enrollment | None:
    """Start the store's flow for a cart that was just abandoned, if it may enter."""
    assert cart.abandoned_at is not None
    flow = current_flow(session, store_id=cart.store_id, now=now)
    definition = definition_of(flow)
    contact = session.get(Contact, cart.contact_id) if cart.contact_id else None
    settings = _settings(session, cart.store_id)
    view = (
        ContactView(contact.orders_count, reach(session, contact, settings).channels)
        if contact
        else None
    )
    if contact is not None and cart.junk_reason is None:  # a task needs someone to call
        schedule_team_alert(session, cart=cart, settings=settings, kind="abandoned", now=now)
    # a bot's cart (cartback.collect) never enters
    refusal = "junk" if cart.junk_reason else entry_refusal(definition, cart_view(cart), view)
    if refusal is None and contact is not None:
        refusal = _end_older_journeys(session, cart=cart, contact=contact, now=now)
    if refusal is not None:
        timeline.record(
            session,
            store_id=cart.store_id,
            cart_id=cart.id,
            at=now,
            kind="flow.not_entered",
            reason=refusal,
            flow_version=flow.version,
        )
        return None
    assert contact is not None
    enrollment = Enrollment(
        id=new_id(),
        store_id=cart.store_id,
        cart_id=cart.id,
        contact_id=contact.id,
        flow_id=flow.id,
        status=EnrollmentStatus.ACTIVE,
        step_index=0,
        started_at=cart.abandoned_at,
    )
    session.add(enrollment)
    session.flush()
    timeline.record(
        session,
        store_id=cart.store_id,
        cart_id=cart.id,
        at=now,
        kind="flow.entered",
        enrollment_id=enrollment.id,
        flow=flow.name,
        flow_version=flow.version,
    )
    schedule_step(session, enrollment, definition, 0, now=now)
    return enrollment


def _end_older_journeys(
    session: Session, *, cart: Cart, contact: Contact, now: datetime
) -> str | None:
    """One stream per shopper: a newer cart's journey replaces an older cart's."""
    rows = session.execute(
        select(Enrollment, Cart)
        .join(Cart, Cart.id == Enrollment.cart_id)
        .where(
            Enrollment.store_id == cart.store_id,
            Enrollment.contact_id == contact.id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.cart_id != cart.id,
        )
    ).all()
    if any(other_cart.last_activity_at > cart.last_activity_at for _, other_cart in rows):
        return "newer_cart_in_journey"
    for other, _ in rows:
        end(session, other, status=EnrollmentStatus.EXITED, reason="newer_cart", now=now)
    return None


def schedule_step(
    session: Session,
    enrollment: Enrollment,
    definition: FlowDefinition,
    index: int,
    *,
    now: datetime,
) -> None:
    when = due_at(definition, EnrollmentView(index, enrollment.started_at), index)
    enrollment.next_due_at = when
    enqueue(
        session,
        store_id=enrollment.store_id,
        kind=STEP_JOB,
        key=step_key(enrollment.id, index),
        run_at=max(when, now),
        payload={"enrollment_id": enrollment.id, "step_index": index},
        now=now,
    )


def advance(
    session: Session, enrollment: Enrollment, definition: FlowDefinition, *, now: datetime
) -> None:
    enrollment.step_index += 1
    if enrollment.step_index >= len(definition.steps):
        end(session, enrollment, status=EnrollmentStatus.COMPLETED, reason=None, now=now)
    else:
        schedule_step(session, enrollment, definition, enrollment.step_index, now=now)


def end(
    session: Session,
    enrollment: Enrollment,
    *,
    status: EnrollmentStatus,
    reason: str | None,
    now: datetime,
) -> None:
    if enrollment.status != EnrollmentStatus.ACTIVE:
        return
    enrollment.status = status
    enrollment.exit_reason = reason
    enrollment.ended_at = now
    enrollment.next_due_at = None
    cancel(
        session, store_id=enrollment.store_id, key=step_key(enrollment.id, enrollment.step_index)
    )
    kind = "flow.completed" if status == EnrollmentStatus.COMPLETED else "flow.exited"
    data: dict[str, object] = {"enrollment_id": enrollment.id}
    if reason:
        data["reason"] = reason
    timeline.record(
        session, store_id=enrollment.store_id, cart_id=enrollment.cart_id, at=now, kind=kind, **data
    )
    session.flush()


def ever_enrolled(session: Session, *, store_id: str, cart_id: str) -> bool:
    return (
        session.execute(
            select(Enrollment.id)
            .where(Enrollment.store_id == store_id, Enrollment.cart_id == cart_id)
            .limit(1)
        ).first()
        is not None
    )


def active_enrollments(
    session: Session, *, store_id: str, cart_id: str | None = None, contact_id: str | None = None
) -> list[Enrollment]:
    query = select(Enrollment).where(
        Enrollment.store_id == store_id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if cart_id is not None:
        query = query.where(Enrollment.cart_id == cart_id)
    if contact_id is not None:
        query = query.where(Enrollment.contact_id == contact_id)
    return list(session.execute(query).scalars())


def exit_journeys(
    session: Session,
    *,
    store_id: str,
    reason: str,
    now: datetime,
    cart_id: str | None = None,
    contact_id: str | None = None,
) -> int:
    """End every active journey of a cart or a contact at once (order, unsubscribe, ...)."""
    found = active_enrollments(session, store_id=store_id, cart_id=cart_id, contact_id=contact_id)
    for enrollment in found:
        end(session, enrollment, status=EnrollmentStatus.EXITED, reason=reason, now=now)
    return len(found)


def request_fallback(
    session: Session, *, store_id: str, enrollment_id: str, step_index: int, now: datetime
) -> None:
    """A step's message failed after it was sent (a delivery report): try the step's next
    channel, as soon as a worker can (idempotent per step)."""
    enqueue(
        session,
        store_id=store_id,
        kind=FALLBACK_JOB,
        key=f"fallback:{enrollment_id}:{step_index}",
        run_at=now,
        payload={"enrollment_id": enrollment_id, "step_index": step_index},
        now=now,
    )


def _settings(session: Session, store_id: str) -> StoreSettings:
    store = session.get(Store, store_id)
    assert store is not None
    return StoreSettings.model_validate(store.settings)


def schedule_team_alert(
    session: Session, *, cart: Cart, settings: StoreSettings, kind: str, now: datetime
) -> bool:
    """Queue a team alert for a valuable cart (``abandoned``: a "call this shopper" task;
    ``recovered``, if the store asked for it). Once per cart and kind."""
    config = settings.channels.team_alert
    if config is None or cart.value < config.min_value:
        return False
    if kind == "recovered" and not config.on_recovery:
        return False
    enqueue(
        session,
        store_id=cart.store_id,
        kind=ALERT_JOB,
        key=f"alert:{cart.id}:{kind}",
        run_at=now,
        payload={"cart_id": cart.id, "kind": kind},
        now=now,
    )
    return True
