from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, JSONType, UTCDateTime


class CartStatus(enum.StrEnum):
    ACTIVE = "active"
    ABANDONED = "abandoned"
    PURCHASED = "purchased"
    RECOVERED = "recovered"
    EXPIRED = "expired"
    CLEARED = "cleared"


class CartStage(enum.StrEnum):
    CART = "cart"
    CHECKOUT = "checkout"


class Cart(Base):
    __tablename__ = "carts"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_carts_store_id_contact_id", "store_id", "contact_id"),
        Index("ix_carts_store_id_abandoned_at", "store_id", "abandoned_at"),
        Index("ix_carts_store_id_created_at", "store_id", "created_at"),
        # expiry reads only open carts, oldest activity first
        Index(
            "ix_carts_open_last_activity_at",
            "last_activity_at",
            postgresql_where=text("status IN ('active', 'abandoned')"),
            sqlite_where=text("status IN ('active', 'abandoned')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(16), default=CartStage.CART)
    status: Mapped[str] = mapped_column(String(16), default=CartStatus.ACTIVE)
    restore_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # occurred_at of the newest snapshot applied: older snapshots never overwrite it
    snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    abandon_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    # why this cart is a bot's (cartback.collect.bots): it never enters a journey or the stats
    junk_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "external_id"),
        Index("ix_orders_store_id_placed_at", "store_id", "placed_at"),
        Index("ix_orders_store_id_contact_id", "store_id", "contact_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    cart_id: Mapped[str | None] = mapped_column(
        ForeignKey("carts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    contact_id: Mapped[str | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), nullable=True
    )
    total: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    discount_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    recovered: Mapped[bool] = mapped_column(default=False)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TimelineEntry(Base):
    """What happened to a cart, in order: events, abandonment, decisions, messages, clicks."""

    __tablename__ = "timeline"
    __table_args__ = (Index("ix_timeline_store_id_cart_id_at", "store_id", "cart_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
