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
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from cartback.carts.models import CartStage, CartStatus
from cartback.carts.service import ABANDON_JOB, abandon_key
from cartback.contacts.service import normalize_email
from cartback.core.db import is_transient
from cartback.ingest.repository import CARTS, CONTACTS, EVENTS, TIMELINE, GroupSql
from cartback.ingest.schemas import CartUpdated, EventIn, Item
from cartback.ingest.service import apply_event
from cartback.queue import NewJob, enqueue_many
from cartback.stores.schemas import StoreSettings

log = logging.getLogger("cartback.ingest")

_ID_BATCH = 16  # ids per draw of random bytes


class _SortableIds:
    """New carts and contacts get time-ordered ids (the shape of
    :func:`~cartback.core.ids.new_sortable_id`): their rows and the index entries keyed by
    them (carts and contacts by id, the abandonment job's key, timeline by cart, carts by
    contact) then land at the right edge of each b-tree instead of on a random page each.
    With random ids, writing those pages was most of the commit: 221 -> 129 us per event
    on SQLite in groups of 64 (docs/benchmarks.md, M1).

    The random halves are drawn ``_ID_BATCH`` at a time: one ``getrandom`` call (which
    also lets go of the GIL, and the writer then waits to get it back) per 16 ids
    instead of per id.
    """

    def __init__(self) -> None:
        self._ready: list[str] = []

    def __call__(self) -> str:
        if not self._ready:
            stamp = time.time_ns()
            noise = secrets.token_hex(8 * _ID_BATCH)
            self._ready = [
                f"{stamp + k:016x}{noise[16 * k : 16 * k + 16]}"
                for k in range(_ID_BATCH - 1, -1, -1)
            ]
        return self._ready.pop()


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
    items_json: str = "[]"  # as stored; replaced by ``items`` when a snapshot is applied
    items: list[Item] | None = None
    value: int = 0
    item_count: int = 0
    abandon_at: datetime | None = None
    touched: bool = False  # shopper activity: write the cart and re-arm its abandonment check
    dirty: bool = False  # the row needs writing (activity, or a contact attached)


_ITEMS: TypeAdapter[list[Item]] = TypeAdapter(list[Item])


class _GroupWriter:
    def __init__(self, session: Session, units: dict[int, IngestUnit]) -> None:
        self.session = session
        self.units = units
        self.stop = max(units) + 1  # the first unit this run did not write
        self.sql = GroupSql(session)
        self._new_id = _SortableIds()

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
        self.sql.insert(TIMELINE, notes)
        return dict(answers)

    def _load_carts(self) -> dict[tuple[str, str], _CartState]:
        wanted: dict[str, set[str]] = {}
        for unit in self.units.values():
            for event in unit.events:
                assert isinstance(event, CartUpdated)
                wanted.setdefault(unit.store_id, set()).add(event.cart.id)
        found: dict[tuple[str, str], _CartState] = {}
        when = self.sql.read_when
        for store_id, ids in wanted.items():
            for row in self.sql.select_carts(store_id, sorted(ids)):
                (cart_id, external_id, status, snapshot_at, last_activity_at, contact_id) = row[:6]
                (restore_url, currency, items, value, item_count, abandon_at) = row[6:]
                found[(store_id, external_id)] = _CartState(
                    id=cart_id,
                    store_id=store_id,
                    external_id=external_id,
                    exists=True,
                    status=status,
                    snapshot_at=when(snapshot_at) if snapshot_at is not None else None,
                    last_activity_at=when(last_activity_at),
                    contact_id=contact_id,
                    restore_url=restore_url,
                    currency=currency,
                    items_json=items,
                    value=value,
                    item_count=item_count,
                    abandon_at=when(abandon_at) if abandon_at is not None else None,
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
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}
        when = self.sql.when
        for unit in units.values():
            received = when(unit.now)
            for event in unit.events:
                key = (unit.store_id, event.id)
                if key not in rows:
                    rows[key] = (
                        unit.store_id,
                        event.id,
                        event.type,
                        when(event.occurred_at),
                        received,
                        # the same text as orjson over model_dump(mode="json"), in one step
                        event.model_dump_json(),
                    )
        return {(row[0], row[1]) for row in self.sql.insert(EVENTS, list(rows.values()))}

    def _upsert_contacts(
        self, units: dict[int, IngestUnit], accepted: set[tuple[int, int]]
    ) -> dict[tuple[str, str], str]:
        merged: dict[tuple[str, str], list[Any]] = {}
        for i, unit in units.items():
            for position, event in enumerate(unit.events):
                assert isinstance(event, CartUpdated)
                contact = event.contact
                email = normalize_email(contact.email) if contact else None
                if contact is None or email is None or (i, position) not in accepted:
                    continue
                row = merged.get((unit.store_id, email))
                if row is None:
                    now = self.sql.when(unit.now)
                    row = [self._new_id(), unit.store_id, email, None, None, None, 0, now, now]
                    merged[(unit.store_id, email)] = row
                # first_name, locale, timezone (columns 3-5): the last one given wins
                given = (contact.first_name, contact.locale, contact.timezone)
                for column, value in enumerate(given, start=3):
                    if value is not None:
                        row[column] = value
        if not merged:
            return {}
        found = self.sql.insert(CONTACTS, [tuple(row) for row in merged.values()])
        return {(store_id, email): contact_id for contact_id, store_id, email in found}

    def _apply(
        self,
        units: dict[int, IngestUnit],
        accepted: set[tuple[int, int]],
        contacts: dict[tuple[str, str], str],
        carts: dict[tuple[str, str], _CartState],
    ) -> tuple[dict[int, IngestResult], list[tuple[Any, ...]]]:
        """The snapshots in arrival order, in memory: newest snapshot wins."""
        answers: dict[int, IngestResult] = {}
        notes: list[tuple[Any, ...]] = []
        for i, unit in units.items():
            results = []
            at = self.sql.when(unit.now)
            delay = unit.settings.abandon_delay  # parsed from its text on every read
            for position, event in enumerate(unit.events):
                assert isinstance(event, CartUpdated)
                if (i, position) not in accepted:
                    results.append({"id": event.id, "status": "duplicate"})
                    continue
                results.append({"id": event.id, "status": "accepted"})
                state, change = self._snapshot(unit, event, carts, delay)
                email = normalize_email(event.contact.email) if event.contact else None
                if email is not None and state.contact_id != contacts[(unit.store_id, email)]:
                    state.contact_id = contacts[(unit.store_id, email)]
                    state.dirty = True
                data = {
                    "event_id": event.id,
                    "occurred_at": event.occurred_at.isoformat(),
                    "change": change,
                    "items": state.item_count,
                    "value": state.value,
                }
                notes.append(
                    (unit.store_id, state.id, at, "event.cart.updated", orjson.dumps(data).decode())
                )
            answers[i] = _summary(results)
        return answers, notes

    def _snapshot(
        self,
        unit: IngestUnit,
        event: CartUpdated,
        carts: dict[tuple[str, str], _CartState],
        delay: timedelta,
    ) -> tuple[_CartState, str]:
        at = min(event.occurred_at, unit.now)  # a clock ahead of ours is not the future
        key = (unit.store_id, event.cart.id)
        state = carts.get(key)
        if state is None:
            state = carts[key] = _CartState(
                id=self._new_id(),
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
        items = event.cart.items
        state.items = items
        state.currency = event.cart.currency
        state.value = sum(i.unit_price * i.quantity for i in items)
        state.item_count = sum(i.quantity for i in items)
        if event.cart.restore_url:
            state.restore_url = event.cart.restore_url
        state.snapshot_at = event.occurred_at
        state.last_activity_at = max(state.last_activity_at, at)
        state.abandon_at = state.last_activity_at + delay
        state.touched = state.dirty = True
        return state, change

    def _write_carts(
        self, carts: dict[tuple[str, str], _CartState], units: dict[int, IngestUnit]
    ) -> None:
        now = {unit.store_id: unit.now for unit in units.values()}
        when = self.sql.when
        changed = [s for s in carts.values() if s.dirty]
        for s in changed:
            if s.items is not None:
                s.items_json = _ITEMS.dump_json(s.items).decode()
        self.sql.insert(
            CARTS,
            [
                (
                    *(s.id, s.store_id, s.external_id, s.contact_id, s.currency, s.items_json),
                    *(s.value, s.item_count, CartStage.CART.value, CartStatus.ACTIVE.value),
                    *(s.restore_url, _when(when, s.snapshot_at), when(s.last_activity_at)),
                    *(_when(when, s.abandon_at), 0, when(now[s.store_id]), when(now[s.store_id])),
                )
                for s in changed
                if not s.exists
            ],
        )
        self.sql.update_carts(
            [
                (
                    *(s.contact_id, s.currency, s.items_json, s.value, s.item_count),
                    *(s.restore_url, _when(when, s.snapshot_at), when(s.last_activity_at)),
                    *(_when(when, s.abandon_at), when(now[s.store_id]), s.id),
                )
                for s in changed
                if s.exists
            ]
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


def _when(when: Callable[[datetime], Any], value: datetime | None) -> Any:
    return None if value is None else when(value)
