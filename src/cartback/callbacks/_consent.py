"""Consent written by callbacks, and how a replayed callback is recognised.

A keyword SMS or a Telegram update carries the provider's id for it (``MessageSid``,
``update_id``, ``callback_query id``); the consent row it writes keeps that id in its
proof, so the same callback coming again finds it and writes nothing. The contacts are
read ``FOR UPDATE`` first, so two deliveries of one callback run one after the other on
PostgreSQL (SQLite has one writer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.contacts.models import Consent, Contact


def locked_contacts(session: Session, store_id: str, *conditions: Any) -> list[Contact]:
    return list(
        session.execute(
            select(Contact)
            .where(Contact.store_id == store_id, *conditions)
            .order_by(Contact.id)
            .with_for_update()
        ).scalars()
    )


def seen(session: Session, contact: Contact, channel: str, key: str, value: object) -> bool:
    """Whether a consent row of this contact already carries ``key: value`` in its proof
    (a contact has a handful of rows per channel: they are read, not searched as JSON)."""
    proofs = session.execute(
        select(Consent.proof).where(
            Consent.store_id == contact.store_id,
            Consent.contact_id == contact.id,
            Consent.channel == channel,
        )
    ).scalars()
    return any(isinstance(proof, dict) and proof.get(key) == value for proof in proofs)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
