from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, UTCDateTime


class MessageStatus(enum.StrEnum):
    """queued -> sending -> sent -> delivered/opened/clicked
    \\-> failed (permanent) | queued again (temporary failure, retried)
    \\-> unknown (a crash between intent and outcome; never resent)"""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    FAILED = "failed"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    UNKNOWN = "unknown"


# A message in one of these may have reached the shopper: it counts against the frequency
# budget, makes a step "sent" for the next step's condition, and takes last-touch credit.
MAY_HAVE_REACHED = frozenset(
    {
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.OPENED,
        MessageStatus.CLICKED,
        MessageStatus.UNKNOWN,
        MessageStatus.COMPLAINED,
        MessageStatus.UNSUBSCRIBED,
    }
)


class Message(Base):
    """One delivery to one contact on one channel; at most one per (enrollment, step, channel).

    A step tries its channels in order and moves to the next only after a permanent
    failure, so a step has at most one message that may have reached the shopper.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_index", "channel"),
        Index("ix_messages_store_id_created_at", "store_id", "created_at"),
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_store_id_cart_id", "store_id", "cart_id"),
        # the frequency budget: a contact's newest messages, across flows
        Index("ix_messages_store_id_contact_id_created_at", "store_id", "contact_id", "created_at"),
        # provider callbacks find their message by the provider's id
        Index("ix_messages_provider_provider_message_id", "provider", "provider_message_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    step_index: Mapped[int] = mapped_column(Integer)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED)
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int | None] = mapped_column(Integer, nullable=True)  # SMS only
    # millionths of the store's currency: an SMS segment costs fractions of a cent
    cost_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
