"""Store KPIs over a period. Definitions live in docs/metrics.md; this is their one home."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from cartback.carts.models import Cart, CartStatus, Order
from cartback.messages.models import Message, MessageStatus


@dataclass
class Stats:
    carts_abandoned: int = 0
    carts_recovered: int = 0
    recovery_rate: float = 0.0
    recovered_revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    orders_recovered: int = 0
    emails_sent: int = 0
    emails_opened: int = 0
    emails_clicked: int = 0
    emails_failed: int = 0
    emails_unknown: int = 0
    unsubscribes: int = 0


def stats(session: Session, *, store_id: str, start: datetime, end: datetime) -> Stats:
    out = Stats()
    abandoned = (
        select(Cart.status, func.count())
        .where(Cart.store_id == store_id, Cart.abandoned_at >= start, Cart.abandoned_at < end)
        .group_by(Cart.status)
    )
    by_status = {status: n for status, n in session.execute(abandoned).all()}
    out.carts_abandoned = sum(by_status.values())
    out.carts_recovered = by_status.get(CartStatus.RECOVERED, 0)
    out.recovery_rate = (
        round(out.carts_recovered / out.carts_abandoned, 4) if out.carts_abandoned else 0.0
    )
    revenue = (
        select(Order.currency, func.count(), func.sum(Order.total))
        .where(
            Order.store_id == store_id,
            Order.recovered.is_(True),
            Order.placed_at >= start,
            Order.placed_at < end,
        )
        .group_by(Order.currency)
    )
    for currency, count, total in session.execute(revenue).all():
        out.recovered_revenue[currency] = int(total or 0)
        out.orders_recovered += count
    in_period = (
        Message.store_id == store_id,
        Message.created_at >= start,
        Message.created_at < end,
        Message.channel == "email",
    )
    row = session.execute(
        select(
            func.count(Message.sent_at),
            func.count(Message.opened_at),
            func.count(Message.clicked_at),
            func.count(Message.unsubscribed_at),
            func.sum(_is(MessageStatus.FAILED)),
            func.sum(_is(MessageStatus.UNKNOWN)),
        ).where(*in_period)
    ).one()
    out.emails_sent, out.emails_opened, out.emails_clicked, out.unsubscribes = (
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]),
    )
    out.emails_failed, out.emails_unknown = int(row[4] or 0), int(row[5] or 0)
    return out


def _is(status: MessageStatus) -> ColumnElement[int]:
    return case((Message.status == status.value, 1), else_=0)
