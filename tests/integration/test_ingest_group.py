"""The set-based group write leaves exactly the rows the one-by-one rules leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cartback.app import Runtime
from cartback.carts.models import Cart, TimelineEntry
from cartback.contacts.models import Contact
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.ingest.batch import IngestUnit, ingest_group, one_by_one
from cartback.ingest.models import Event
from cartback.ingest.schemas import batch_adapter
from cartback.queue import Job
from cartback.stores.models import Store
from cartback.stores.service import store_settings
from support.factories import START, cart_updated, item, make_store

snapshot = st.fixed_dictionaries(
    {
        "cart": st.sampled_from(["c1", "c2", "c3"]),
        "minutes": st.integers(min_value=-90, max_value=30),
        "quantity": st.integers(min_value=1, max_value=4),
        "email": st.sampled_from(
            [None, "ann@example.com", "ANN@example.com", "bo@example.com", "old@example.com"]
        ),
        "name": st.sampled_from([None, "Ann", "Bo"]),
        "event": st.integers(min_value=0, max_value=12),  # repeats are duplicates
    }
)
requests = st.lists(st.lists(snapshot, min_size=1, max_size=4), min_size=1, max_size=6)
# carts that exist before the group, and the status each is in by then
before = st.dictionaries(
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["active", "abandoned", "purchased", "cleared"]),
    max_size=3,
)


def units_for(
    runtime: Runtime, store_id: str, spec: list[list[dict[str, Any]]]
) -> list[IngestUnit]:
    with runtime.sessions() as session:
        store = session.get(Store, store_id)
        assert store is not None
        found = store_settings(store)
    out = []
    for request in spec:
        events = [
            cart_updated(
                e["cart"],
                at=START + timedelta(minutes=e["minutes"]),
                event_id=f"e{e['event']}",
                items=[item(quantity=e["quantity"])],
                email=e["email"],
                first_name=e["name"],
            )
            for e in request
        ]
        out.append(IngestUnit(store_id, found, batch_adapter.validate_python(events), START))
    return out


def state(session: Session, store_id: str) -> dict[str, Any]:
    carts = {}
    for cart in session.execute(select(Cart).where(Cart.store_id == store_id)).scalars():
        contact = session.get(Contact, cart.contact_id) if cart.contact_id else None
        job = session.execute(select(Job).where(Job.key == f"abandon:{cart.id}")).scalar_one()
        notes = session.execute(
            select(TimelineEntry).where(TimelineEntry.cart_id == cart.id).order_by(TimelineEntry.id)
        ).scalars()
        carts[cart.external_id] = (
            cart.items,
            cart.value,
            cart.item_count,
            cart.status,
            cart.snapshot_at,
            cart.last_activity_at,
            cart.abandon_at,
            cart.restore_url,
            contact.email if contact else None,
            job.run_at,
            job.status,
            [(n.kind, n.data) for n in notes],
        )
    contacts = sorted(
        (c.email, c.first_name)
        for c in session.execute(select(Contact).where(Contact.store_id == store_id)).scalars()
    )
    events = sorted(
        e.event_id
        for e in session.execute(select(Event).where(Event.store_id == store_id)).scalars()
    )
    return {"carts": carts, "contacts": contacts, "events": events}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=requests, prior=before)
def test_the_group_write_matches_the_one_by_one_rules(
    runtime: Runtime,
    clock: ManualClock,
    spec: list[list[dict[str, Any]]],
    prior: dict[str, str],
) -> None:
    grouped = make_store(runtime, clock, name="grouped")
    single = make_store(runtime, clock, name="single")
    for store in (grouped, single):
        earlier = [
            [
                {
                    "cart": c,
                    "minutes": -120,
                    "quantity": 1,
                    "email": "old@example.com",
                    "name": "Old",
                    "event": 100 + n,
                }
            ]
            for n, c in enumerate(sorted(prior))
        ]
        with transaction(runtime.sessions) as session:
            for unit in units_for(runtime, store.id, earlier):
                assert not isinstance(one_by_one(session, unit), Exception)
            for cart_id, status in prior.items():
                session.execute(
                    update(Cart)
                    .where(Cart.store_id == store.id, Cart.external_id == cart_id)
                    .values(status=status)
                )

    with transaction(runtime.sessions) as session:
        group_answers = ingest_group(session, units_for(runtime, grouped.id, spec))
    with transaction(runtime.sessions) as session:
        single_answers = [one_by_one(session, u) for u in units_for(runtime, single.id, spec)]

    assert group_answers == single_answers
    with runtime.sessions() as session:
        assert state(session, grouped.id) == state(session, single.id)
