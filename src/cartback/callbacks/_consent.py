"""Consent written by callbacks, and how a replayed callback is recognised.

A keyword SMS or a Telegram update carries the provider's id for it (``MessageSid``,
``update_id``, ``callback_query id``); a receipt unique on (store, source, id) is inserted
first with ``ON CONFLICT DO NOTHING``, so the same callback coming again — even after a
later one changed the contact — finds its receipt and writes nothing. Two deliveries of
one callback at once: the second insert waits for the first transaction (PostgreSQL) or
the one writer (SQLite), then does nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.callbacks.models import CallbackReceipt
from cartback.contacts.models import Contact
from cartback.core.db import upsert_ignore
from cartback.core.ids import new_id


def locked_contacts(session: Session, store_id: str, *conditions: Any) -> list[Contact]:
    return list(
        session.execute(
            select(Contact)
            .where(Contact.store_id == store_id, *conditions)
            .order_by(Contact.id)
            .with_for_update()
        ).scalars()
    )


def first_time(
    session: Session, store_id: str, source: str, event_id: object, now: datetime
) -> bool:
    """Record that this callback was acted on; False when it already had been (a replay)."""
    return upsert_ignore(
        session,
        CallbackReceipt,
        {
            "id": new_id(),
            "store_id": store_id,
            "source": source,
            "event_id": str(event_id),
            "received_at": now,
        },
        conflict=("store_id", "source", "event_id"),
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
