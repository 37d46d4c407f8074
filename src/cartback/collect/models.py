from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, JSONType, UTCDateTime


class Visitor(Base):
    """A browser the snippet names by its first-party id (one of a contact's "anonymous
    visitor ids"); linked to the contact once the shopper's email or phone is captured."""

    __tablename__ = "visitors"
    __table_args__ = (Index("ix_visitors_store_id_contact_id", "store_id", "contact_id"),)

    store_id: Mapped[str] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True
    )
    visitor_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    # why this visitor is a bot (cartback.collect.bots); its carts carry the same reason
    junk_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # the earliest event time seen (server-anchored, see docs/snippet-protocol.md)
    first_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_event_type: Mapped[str] = mapped_column(String(32))
    # the current one-second window of cart updates, for the impossible-speed check
    burst_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    burst_count: Mapped[int] = mapped_column(Integer, default=0)
    # the newest product viewed: what a price watch watches when there is no cart
    last_product: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitorCart(Base):
    """Which visitor's browser wrote a cart: a cart belongs to one visitor and follows its
    contact and its junk flag."""

    __tablename__ = "visitor_carts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["store_id", "visitor_id"],
            ["visitors.store_id", "visitors.visitor_id"],
            ondelete="CASCADE",
        ),
        Index("ix_visitor_carts_store_id_visitor_id", "store_id", "visitor_id"),
    )

    store_id: Mapped[str] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True
    )
    cart_id: Mapped[str] = mapped_column(
        ForeignKey("carts.id", ondelete="CASCADE"), primary_key=True
    )
    visitor_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PriceWatch(Base):
    """A shopper's "tell me if the price of my cart drops": the prices they saw, watched
    until ``until``. ``items`` are ``{sku, name, unit_price}`` in ``currency`` (minor units)."""

    __tablename__ = "price_watches"
    __table_args__ = (
        Index("ix_price_watches_store_id_until", "store_id", "until"),
        Index("ix_price_watches_store_id_contact_id", "store_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    cart_id: Mapped[str | None] = mapped_column(
        ForeignKey("carts.id", ondelete="SET NULL"), nullable=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # where the alert goes (consented)
    currency: Mapped[str] = mapped_column(String(3))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class CartEmailStatus(enum.StrEnum):
    """queued -> sending -> sent | failed; a ``sending`` one found by a later run (a crash
    between intent and outcome) -> unknown, never resent."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


class CartEmail(Base):
    """The one "here is your cart" email a shopper asked for from a prompt: at most one
    per cart, by the unique key. ``id`` is the email's Message-ID."""

    __tablename__ = "cart_emails"
    __table_args__ = (UniqueConstraint("store_id", "cart_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    to_address: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default=CartEmailStatus.QUEUED)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
