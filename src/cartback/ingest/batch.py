"""Group ingest: the common case written set-based, everything else one by one.

The group-commit writer hands over every ingest request that is waiting. Most events
are plain cart snapshots of live carts; those are written for the whole group with a
handful of statements (events, contacts, carts, their abandonment jobs, timeline rows),
which costs a small fraction of applying them one at a time through the ORM. A request
that holds anything else — an order, a consent change, a cart that was abandoned or
closed, an unusual contact — goes through :func:`cartback.ingest.service.apply_event`,
which knows every rule. Both paths leave the same rows behind; a property test holds
them to that.

Requests keep their order: the group is cut into runs of plain requests, each written
set-based, with every other request applied one by one between them. A plain request
whose cart turns out not to be live (abandoned, bought, emptied) ends its run and goes
one by one as well.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cartback.carts.models import Cart, CartStage, CartStatus, TimelineEntry
from cartback.carts.service import ABANDON_JOB, abandon_key
from cartback.contacts.models import Contact
from cartback.contacts.service import normalize_email
from cartback.core.db import is_sqlite, is_transient
from cartback.core.ids import new_id
from cartback.ingest.models import Event
from cartback.ingest.schemas import CartUpdated, EventIn
from cartback.ingest.service import apply_event
from cartback.queue import NewJob, enqueue_many
from cartback.stores.schemas import StoreSettings

log = logging.getLogger("cartback.ingest")

EVENTS: Table = Event.__table__  # type: ignore[assignment]
CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
CARTS: Table = Cart.__table__  # type: ignore[assignment]
TIMELINE: Table = TimelineEntry.__table__  # type: ignore[assignment]

IngestResult = dict[str, Any]


@dataclass(frozen=True)
class IngestUnit:
    """One request's events, for one store."""

    store_id: str
    settings: StoreSettings
    events: list[EventIn]
    now: datetime


def ingest_group(session: Session, units: list[IngestUnit]) -> list[IngestResult | Exception]:
    """Apply every unit in order; each gets its result, or the exception that is its answer."""
    answers: dict[int, IngestResult | Exception] = {}
    i = 0
    while i < len(units):
        end = i
        while end < len(units) and all(map(_plain, units[end].events)):
            end += 1
        if end == i:  # not plain: the full rules
            answers[i] = one_by_one(session, units[i])
            i += 1
            continue
        writer = _GroupWriter(session, {k: units[k] for k in range(i, end)})
        try:
            with session.begin_nested():
                answers.update(writer.write())
        except Exception as exc:
            if is_transient(exc):
                raise  # the writer runs the whole group again
            log.warning("ingest.group_write_failed", exc_info=True)
            answers.update({k: one_by_one(session, units[k]) for k in range(i, writer.stop)})
        i = writer.stop
    return [answers[i] for i in range(len(units))]


def one_by_one(session: Session, unit: IngestUnit) -> IngestResult | Exception:
    """Apply a unit's events in order through the full rules, in its own savepoint."""
    try:
        with session.begin_nested():
            results = [
                {
                    "id": event.id,
                    "status": "accepted"
                    if apply_event(
                        session,
                        store_id=unit.store_id,
                        settings=unit.settings,
                        event=event,
                        now=unit.now,
                    )
                    else "duplicate",
                }
                for event in unit.events
            ]
    except Exception as exc:  # this unit's answer; the group goes on
        return exc
    return _summary(results)


def _first_fresh(units: dict[int, IngestUnit], fresh: set[tuple[str, str]]) -> set[tuple[int, int]]:
    """(unit, position) of each newly stored event's first occurrence in the group."""
    seen: set[tuple[str, str]] = set()
    out = set()
    for i, unit in units.items():
        for position, event in enumerate(unit.events):
            key = (unit.store_id, event.id)
            if key in fresh and key not in seen:
                seen.add(key)
                out.add((i, position))
    return out


def _summary(results: list[dict[str, str]]) -> IngestResult:
    accepted = sum(1 for r in results if r["status"] == "accepted")
    return {"accepted": accepted, "duplicates": len(results) - accepted, "results": results}


def _plain(event: EventIn) -> bool:
    """A snapshot the set-based path can write: items present, at most an email and
    display fields for the contact (no phone or external id to match on, no consent)."""
    if not isinstance(event, CartUpdated) or not event.cart.items:
        return False
    contact = event.contact
    return contact is None or (
        contact.phone is None
        and contact.external_id is None
        and contact.country is None
        and not contact.consent
    )


@dataclass
class _CartState:
    id: str
    store_id: str
    external_id: str
    exists: bool
    status: str
    snapshot_at: datetime | None
    last_activity_at: datetime
    contact_id: str | None
    restore_url: str | None
    currency: str = ""
    items: list[dict[str, Any]] = field(default_factory=list)
    value: int = 0
    item_count: int = 0
    abandon_at: datetime | None = None
    touched: bool = False  # shopper activity: write the cart and re-arm its abandonment check
    dirty: bool = False  # the row needs writing (activity, or a contact attached)


class _GroupWriter:
    def __init__(self, session: Session, units: dict[int, IngestUnit]) -> None:
        self.session = session
        self.units = units
        self.stop = max(units) + 1  # the first unit this run did not write

    def write(self) -> dict[int, IngestResult | Exception]:
        carts = self._load_carts()
        for i, unit in self.units.items():
            if self._needs_full_rules(unit, carts):
                self.stop = i
                break
        live = {i: u for i, u in self.units.items() if i < self.stop}
        if not live:  # the first unit's cart is not live: it goes one by one
            first = self.stop
            self.stop += 1
            return {first: one_by_one(self.session, self.units[first])}

        fresh = self._insert_events(live)
        accepted = _first_fresh(live, fresh)
        contacts = self._upsert_contacts(live, accepted)
        answers, notes = self._apply(live, accepted, contacts, carts)
        self._write_carts(carts, live)
        self._write_timeline(notes)
        return dict(answers)

    def _load_carts(self) -> dict[tuple[str, str], _CartState]:
        wanted: dict[str, set[str]] = {}
        for unit in self.units.values():
            for event in unit.events:
                assert isinstance(event, CartUpdated)
                wanted.setdefault(unit.store_id, set()).add(event.cart.id)
        found: dict[tuple[str, str], _CartState] = {}
        c = CARTS.c
        for store_id, ids in wanted.items():
            rows = self.session.execute(
                select(
                    c.id,
                    c.external_id,
                    c.status,
                    c.snapshot_at,
                    c.last_activity_at,
                    c.contact_id,
                    c.restore_url,
                    c.currency,
                    c["items"],
                    c.value,
                    c.item_count,
                    c.abandon_at,
                ).where(c.store_id == store_id, c.external_id.in_(sorted(ids)))
            )
            for row in rows:
                found[(store_id, row.external_id)] = _CartState(
                    id=row.id,
                    store_id=store_id,
                    external_id=row.external_id,
                    exists=True,
                    status=row.status,
                    snapshot_at=row.snapshot_at,
                    last_activity_at=row.last_activity_at,
                    contact_id=row.contact_id,
                    restore_url=row.restore_url,
                    currency=row.currency,
                    items=row.items,
                    value=row.value,
                    item_count=row.item_count,
                    abandon_at=row.abandon_at,
                )
        return found

    @staticmethod
    def _needs_full_rules(unit: IngestUnit, carts: dict[tuple[str, str], _CartState]) -> bool:
        """A cart that is not live (abandoned, bought, emptied, expired) has journeys or
        closing rules to honour: that is the one-by-one path's job."""
        for event in unit.events:
            assert isinstance(event, CartUpdated)
            state = carts.get((unit.store_id, event.cart.id))
            if state is not None and state.status != CartStatus.ACTIVE:
                return True
        return False

    def _insert_events(self, units: dict[int, IngestUnit]) -> set[tuple[str, str]]:
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for unit in units.values():
            for event in unit.events:
                rows.setdefault(
                    (unit.store_id, event.id),
                    {
                        "store_id": unit.store_id,
                        "event_id": event.id,
                        "type": event.type,
                        "occurred_at": event.occurred_at,
                        "received_at": unit.now,
                        "payload": event.model_dump(mode="json"),
                    },
                )
        insert = sqlite.insert if is_sqlite(self.session) else postgresql.insert
        stmt = (
            insert(EVENTS)
            .on_conflict_do_nothing(index_elements=[EVENTS.c.store_id, EVENTS.c.event_id])
            .returning(EVENTS.c.store_id, EVENTS.c.event_id)
        )
        result = self.session.execute(stmt, list(rows.values()))
        return {(row.store_id, row.event_id) for row in result}

    def _upsert_contacts(
        self, units: dict[int, IngestUnit], accepted: set[tuple[int, int]]
    ) -> dict[tuple[str, str], str]:
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for i, unit in units.items():
            for position, event in enumerate(unit.events):
                assert isinstance(event, CartUpdated)
                contact = event.contact
                email = normalize_email(contact.email) if contact else None
                if contact is None or email is None or (i, position) not in accepted:
                    continue
                row = merged.setdefault(
                    (unit.store_id, email),
                    {
                        "id": new_id(),
                        "store_id": unit.store_id,
                        "email": email,
                        "first_name": None,
                        "locale": None,
                        "timezone": None,
                        "orders_count": 0,
                        "created_at": unit.now,
                        "updated_at": unit.now,
                    },
                )
                for name in ("first_name", "locale", "timezone"):
                    if getattr(contact, name) is not None:
                        row[name] = getattr(contact, name)
        if not merged:
            return {}
        insert = sqlite.insert if is_sqlite(self.session) else postgresql.insert
        stmt = insert(CONTACTS)
        keep = {
            name: func.coalesce(stmt.excluded[name], CONTACTS.c[name])
            for name in ("first_name", "locale", "timezone")
        }
        upsert = stmt.on_conflict_do_update(
            index_elements=[CONTACTS.c.store_id, CONTACTS.c.email],
            set_={**keep, "updated_at": stmt.excluded.updated_at},
        ).returning(CONTACTS.c.id, CONTACTS.c.store_id, CONTACTS.c.email)
        result = self.session.execute(upsert, list(merged.values()))
        return {(row.store_id, row.email): row.id for row in result}

    def _apply(
        self,
        units: dict[int, IngestUnit],
        accepted: set[tuple[int, int]],
        contacts: dict[tuple[str, str], str],
        carts: dict[tuple[str, str], _CartState],
    ) -> tuple[dict[int, IngestResult], list[dict[str, Any]]]:
        """The snapshots in arrival order, in memory: newest snapshot wins."""
        answers: dict[int, IngestResult] = {}
        notes: list[dict[str, Any]] = []
        for i, unit in units.items():
            results = []
            for position, event in enumerate(unit.events):
                assert isinstance(event, CartUpdated)
                if (i, position) not in accepted:
                    results.append({"id": event.id, "status": "duplicate"})
                    continue
                results.append({"id": event.id, "status": "accepted"})
                state, change = self._snapshot(unit, event, carts)
                email = normalize_email(event.contact.email) if event.contact else None
                if email is not None and state.contact_id != contacts[(unit.store_id, email)]:
                    state.contact_id = contacts[(unit.store_id, email)]
                    state.dirty = True
                notes.append(
                    {
                        "store_id": unit.store_id,
                        "cart_id": state.id,
                        "at": unit.now,
                        "kind": "event.cart.updated",
                        "data": {
                            "event_id": event.id,
                            "occurred_at": event.occurred_at.isoformat(),
                            "change": change,
                            "items": state.item_count,
                            "value": state.value,
                        },
                    }
                )
            answers[i] = _summary(results)
        return answers, notes

    @staticmethod
    def _snapshot(
        unit: IngestUnit, event: CartUpdated, carts: dict[tuple[str, str], _CartState]
    ) -> tuple[_CartState, str]:
        at = min(event.occurred_at, unit.now)  # a clock ahead of ours is not the future
        key = (unit.store_id, event.cart.id)
        state = carts.get(key)
        if state is None:
            state = carts[key] = _CartState(
                id=new_id(),
                store_id=unit.store_id,
                external_id=event.cart.id,
                exists=False,
                status=CartStatus.ACTIVE,
                snapshot_at=None,
                last_activity_at=at,
                contact_id=None,
                restore_url=None,
            )
            change = "created"
        elif state.snapshot_at is not None and event.occurred_at <= state.snapshot_at:
            return state, "stale"
        else:
            change = "updated"
        state.items = [item.model_dump(mode="json") for item in event.cart.items]
        state.currency = event.cart.currency
        state.value = sum(i["unit_price"] * i["quantity"] for i in state.items)
        state.item_count = sum(i["quantity"] for i in state.items)
        if event.cart.restore_url:
            state.restore_url = event.cart.restore_url
        state.snapshot_at = event.occurred_at
        state.last_activity_at = max(state.last_activity_at, at)
        state.abandon_at = state.last_activity_at + unit.settings.abandon_delay
        state.touched = state.dirty = True
        return state, change

    def _write_carts(
        self, carts: dict[tuple[str, str], _CartState], units: dict[int, IngestUnit]
    ) -> None:
        now = {unit.store_id: unit.now for unit in units.values()}
        changed = [s for s in carts.values() if s.dirty]
        new = [s for s in changed if not s.exists]
        if new:
            self.session.execute(
                CARTS.insert(),
                [
                    {
                        "id": s.id,
                        "store_id": s.store_id,
                        "external_id": s.external_id,
                        "contact_id": s.contact_id,
                        "currency": s.currency,
                        "items": s.items,
                        "value": s.value,
                        "item_count": s.item_count,
                        "stage": CartStage.CART,
                        "status": CartStatus.ACTIVE,
                        "restore_url": s.restore_url,
                        "snapshot_at": s.snapshot_at,
                        "last_activity_at": s.last_activity_at,
                        "abandon_at": s.abandon_at,
                        "reminders_sent": 0,
                        "created_at": now[s.store_id],
                        "updated_at": now[s.store_id],
                    }
                    for s in new
                ],
            )
        old = [s for s in changed if s.exists]
        if old:
            c = CARTS.c
            self.session.execute(
                update(CARTS)
                .where(c.id == bindparam("b_id"))
                .values(
                    contact_id=bindparam("b_contact_id"),
                    currency=bindparam("b_currency"),
                    items=bindparam("b_items", type_=c["items"].type),
                    value=bindparam("b_value"),
                    item_count=bindparam("b_item_count"),
                    restore_url=bindparam("b_restore_url"),
                    snapshot_at=bindparam("b_snapshot_at", type_=c.snapshot_at.type),
                    last_activity_at=bindparam("b_last", type_=c.last_activity_at.type),
                    abandon_at=bindparam("b_abandon_at", type_=c.abandon_at.type),
                    updated_at=bindparam("b_updated_at", type_=c.updated_at.type),
                ),
                [
                    {
                        "b_id": s.id,
                        "b_contact_id": s.contact_id,
                        "b_currency": s.currency,
                        "b_items": s.items,
                        "b_value": s.value,
                        "b_item_count": s.item_count,
                        "b_restore_url": s.restore_url,
                        "b_snapshot_at": s.snapshot_at,
                        "b_last": s.last_activity_at,
                        "b_abandon_at": s.abandon_at,
                        "b_updated_at": now[s.store_id],
                    }
                    for s in old
                ],
            )
        jobs = [
            NewJob(
                store_id=s.store_id,
                kind=ABANDON_JOB,
                key=abandon_key(s.id),
                run_at=max(s.abandon_at, now[s.store_id]),
                payload={"cart_id": s.id},
            )
            for s in changed
            if s.touched and s.abandon_at is not None
        ]
        if jobs:
            enqueue_many(self.session, jobs, replace=True, now=min(now.values()))

    def _write_timeline(self, notes: list[dict[str, Any]]) -> None:
        if notes:
            self.session.execute(TIMELINE.insert(), notes)
