"""Contacts, the consent ledger and suppressions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cartback.contacts.models import Consent, Contact, Suppression
from cartback.contacts.phones import normalize_phone
from cartback.core.db import upsert_ignore
from cartback.core.ids import new_id, new_sortable_id


@dataclass(frozen=True)
class ContactFields:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    external_id: str | None = None
    country: str | None = None


def normalize_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def normalize_phone_number(phone: str | None, country: str | None) -> str | None:
    """E.164 when the number is valid (``8 701 234 5678`` in KZ -> ``+77012345678``), else
    the text as given: kept for the record, and the policy never sends to it."""
    if not phone:
        return None
    return normalize_phone(phone, country=country).e164 or phone.strip()


def identify(
    session: Session,
    *,
    store_id: str,
    fields: ContactFields,
    now: datetime,
    default_country: str | None = None,
) -> Contact:
    """Find the store's contact by email, then external id, then phone; create it if new.

    Known fields are filled in; a field the event leaves out is kept as it is. Phone
    numbers are stored in E.164, read with the contact's country, else the store's.
    """
    email = normalize_email(fields.email)
    country = fields.country.upper() if fields.country else None
    phone = normalize_phone_number(fields.phone, country or default_country)
    fields = ContactFields(
        email=email,
        phone=phone,
        first_name=fields.first_name,
        locale=fields.locale,
        timezone=fields.timezone,
        external_id=fields.external_id,
        country=country,
    )
    contact = _find(session, store_id, email, fields.external_id, phone)
    if contact is None:
        contact = Contact(id=new_id(), store_id=store_id, created_at=now, orders_count=0)
        session.add(contact)
    if email and contact.email is None:
        contact.email = email
    for name in ("phone", "first_name", "locale", "timezone", "external_id", "country"):
        value = getattr(fields, name)
        if value is not None:
            setattr(contact, name, value)
    contact.updated_at = now
    session.flush()
    return contact


def _find(
    session: Session, store_id: str, email: str | None, external_id: str | None, phone: str | None
) -> Contact | None:
    for column, value in (
        (Contact.email, email),
        (Contact.external_id, external_id),
        (Contact.phone, phone),
    ):
        if value:
            found = session.execute(
                select(Contact).where(Contact.store_id == store_id, column == value).limit(1)
            ).scalar_one_or_none()
            if found is not None:
                return found
    return None


def record_consent(
    session: Session,
    *,
    contact: Contact,
    channel: str,
    granted: bool,
    source: str,
    occurred_at: datetime,
    proof: dict[str, Any] | None = None,
) -> None:
    session.add(
        Consent(
            id=new_sortable_id(),  # same occurred_at: the later write wins
            store_id=contact.store_id,
            contact_id=contact.id,
            channel=channel,
            granted=granted,
            source=source,
            occurred_at=occurred_at,
            proof=proof or {},
        )
    )
    session.flush()


def latest_consent(store_id: Any, contact_id: Any, channel: Any) -> Select[bool]:
    """The newest consent ledger entry's ``granted``. The arguments may be values or
    columns (a correlated subquery, as the journey step reads it)."""
    return (
        select(Consent.granted)
        .where(
            Consent.store_id == store_id,
            Consent.contact_id == contact_id,
            Consent.channel == channel,
        )
        .order_by(Consent.occurred_at.desc(), Consent.id.desc())
        .limit(1)
    )


def suppression(store_id: Any, channel: Any, address: Any) -> Select[str]:
    """Why an address must not be messaged on a channel (values or columns)."""
    return (
        select(Suppression.reason)
        .where(
            Suppression.store_id == store_id,
            Suppression.channel == channel,
            Suppression.address == address,
        )
        .limit(1)
    )


def current_consent(session: Session, *, contact: Contact, channel: str) -> bool | None:
    """The newest ledger entry for the channel: True, False, or None when never asked."""
    return session.execute(
        latest_consent(contact.store_id, contact.id, channel)
    ).scalar_one_or_none()


def suppress(
    session: Session, *, store_id: str, channel: str, address: str, reason: str, now: datetime
) -> None:
    """Never message this address again on this channel (idempotent)."""
    upsert_ignore(
        session,
        Suppression,
        {
            "id": new_id(),
            "store_id": store_id,
            "channel": channel,
            "address": address,
            "reason": reason,
            "created_at": now,
        },
        conflict=("store_id", "channel", "address"),
    )


def unsuppress(session: Session, *, store_id: str, channel: str, address: str) -> bool:
    """Lift a suppression (the shopper re-subscribed, e.g. START by SMS); True if one was lifted."""
    found = session.execute(
        select(Suppression).where(
            Suppression.store_id == store_id,
            Suppression.channel == channel,
            Suppression.address == address,
        )
    ).scalar_one_or_none()
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def suppression_reason(
    session: Session, *, store_id: str, channel: str, address: str
) -> str | None:
    return session.execute(suppression(store_id, channel, address)).scalar_one_or_none()


def engaged(contact: Contact, *, at: datetime) -> None:
    """The contact opened, clicked or ordered: a sunset (flows.policy) ends."""
    if contact.last_engaged_at is None or at > contact.last_engaged_at:
        contact.last_engaged_at = at


def sent_external(contact: Contact, *, at: datetime) -> None:
    """The store messaged the contact itself (a newsletter): today's reminder waits."""
    if contact.external_message_at is None or at > contact.external_message_at:
        contact.external_message_at = at
