from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, JSONType, UTCDateTime


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("store_id", "email"),
        Index("ix_contacts_store_id_phone", "store_id", "phone"),
        Index("ix_contacts_store_id_external_id", "store_id", "external_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    first_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)  # ISO 3166-1
    # a private chat's id (int64, kept as text), linked through the bot's deep link
    telegram_chat_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    # the newest open, click or order: ends a sunset (flows.policy)
    last_engaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the store told us it sent this contact a newsletter/campaign (message.sent_external)
    external_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """Append-only consent ledger; the newest row per (contact, channel) is the current state."""

    __tablename__ = "consents"
    __table_args__ = (
        Index("ix_consents_contact_channel", "store_id", "contact_id", "channel", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proof: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Suppression(Base):
    """A reason never to message an address: unsubscribed, hard bounce, complaint, erased."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("store_id", "channel", "address"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PushSubscription(Base):
    """Where a contact's device takes push: a Web Push subscription or an FCM token.

    ``kind`` is ``web`` (``endpoint`` + ``keys`` p256dh/auth) or ``fcm`` (``endpoint`` is
    the registration token). Deleted when the push service says it is gone (404/410,
    ``UNREGISTERED``).
    """

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        UniqueConstraint("store_id", "endpoint"),
        Index("ix_push_subscriptions_store_id_contact_id", "store_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str] = mapped_column(String(2048))
    keys: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    user_agent: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
