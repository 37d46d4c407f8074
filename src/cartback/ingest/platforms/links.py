"""Links from a platform's other names for a cart to our cart id, and the newest version
seen of a resource that has no snapshot time of its own.

Shopify names one checkout three ways — its token (our cart id), its cart token and its
numeric id — and its webhooks do not all carry the same one: ``checkouts/delete`` has only
the cart token and the id; an order may lack the checkout token. Each link is a row of
``events`` (type ``platform.link``, the link key as its event id): found again with one
lookup on the (store, event id) unique index, committed or rolled back with the delivery
that made it, and pruned with the events after the retention period — long after any
order could still be matched to the cart (the attribution window is days).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.core.db import upsert_ignore
from cartback.ingest.models import Event

LINK_TYPE = "platform.link"


def _row(session: Session, store_id: str, key: str) -> Event | None:
    return session.execute(
        select(Event).where(Event.store_id == store_id, Event.event_id == key)
    ).scalar_one_or_none()


def seen(session: Session, *, store_id: str, event_id: str) -> bool:
    """This store has an event (or a link) with this id."""
    return (
        session.execute(
            select(Event.id).where(Event.store_id == store_id, Event.event_id == event_id)
        ).first()
        is not None
    )


def remember(
    session: Session, *, store_id: str, key: str, target: str, at: datetime, now: datetime
) -> None:
    """From now on ``key`` names ``target``, unless a link made at a later ``at`` says
    otherwise (a cart token reused by a newer checkout points at the newer one)."""
    row = _row(session, store_id, key)
    if row is None:
        upsert_ignore(
            session,
            Event,
            {
                "store_id": store_id,
                "event_id": key,
                "type": LINK_TYPE,
                "occurred_at": at,
                "received_at": now,
                "payload": {"target": target},
            },
            conflict=("store_id", "event_id"),
        )
    elif row.payload.get("target") != target and at >= row.occurred_at:
        row.payload = {"target": target}
        row.occurred_at = at
        session.flush()


def recall(session: Session, *, store_id: str, key: str) -> str | None:
    row = _row(session, store_id, key)
    target = row.payload.get("target") if row is not None else None
    return target if isinstance(target, str) else None


def newer(session: Session, *, store_id: str, key: str, at: datetime, now: datetime) -> bool:
    """True, and ``at`` kept as the newest, when nothing under ``key`` is as new as ``at``."""
    row = _row(session, store_id, key)
    if row is not None and at <= row.occurred_at:
        return False
    if row is None:
        upsert_ignore(
            session,
            Event,
            {
                "store_id": store_id,
                "event_id": key,
                "type": LINK_TYPE,
                "occurred_at": at,
                "received_at": now,
                "payload": {},
            },
            conflict=("store_id", "event_id"),
        )
    else:
        row.occurred_at = at
        session.flush()
    return True
