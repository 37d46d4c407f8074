from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cartback.core.db import Base, UTCDateTime


class CallbackReceipt(Base):
    """A provider callback already acted on, by the provider's own id for it (a Twilio
    MessageSid, a Telegram update_id): the same callback again changes nothing."""

    __tablename__ = "callback_receipts"
    __table_args__ = (UniqueConstraint("store_id", "source", "event_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))  # twilio_inbound, telegram_update, ...
    event_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
