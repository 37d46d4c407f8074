"""A cart's timeline: every event, decision, message and click, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.carts.models import TimelineEntry


def record(
    session: Session, *, store_id: str, cart_id: str, at: datetime, kind: str, **data: Any
) -> None:
    session.add(TimelineEntry(store_id=store_id, cart_id=cart_id, at=at, kind=kind, data=data))


def entries(session: Session, *, store_id: str, cart_id: str) -> list[TimelineEntry]:
    return list(
        session.execute(
            select(TimelineEntry)
            .where(TimelineEntry.store_id == store_id, TimelineEntry.cart_id == cart_id)
            .order_by(TimelineEntry.at, TimelineEntry.id)
        ).scalars()
    )
