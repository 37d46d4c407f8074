"""Store KPIs over a period. Definitions live in docs/metrics.md; this is their one home."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from cartback.carts.models import Cart, CartStatus, Order
from cartback.content import minor_to_decimal
from cartback.messages.models import MAY_HAVE_REACHED, Message, MessageStatus

MICROS = Decimal(1_000_000)


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
    # per channel: sent, delivered, failed, clicked, cost, attributed revenue, return on cost
    channels: dict[str, dict[str, object]] = field(default_factory=dict)
    cost: str = "0"  # in the store's currency, a decimal string (sub-cent SMS prices)
    revenue_per_cost: float | None = None  # recovered revenue per unit of cost


def stats(
    session: Session, *, store_id: str, start: datetime, end: datetime, currency: str = "USD"
) -> Stats:
    """KPIs of orders and messages in [start, end); costs are in the store's ``currency``
    and the return on cost counts recovered revenue in that currency only."""
    out = Stats()
    abandoned = (
        select(Cart.status, func.count())
        .where(
            Cart.store_id == store_id,
            Cart.abandoned_at >= start,
            Cart.abandoned_at < end,
            Cart.junk_reason.is_(None),  # a bot's cart is no lost sale
        )
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
    _per_channel(session, out, store_id, start, end, currency)
    return out


def _per_channel(
    session: Session, out: Stats, store_id: str, start: datetime, end: datetime, currency: str
) -> None:
    """Sends, cost and last-touch recovered revenue per channel (docs/metrics.md)."""
    rows = session.execute(
        select(
            Message.channel,
            func.count(Message.sent_at),
            func.count(Message.delivered_at),
            func.sum(_is(MessageStatus.FAILED)),
            func.count(Message.clicked_at),
            func.sum(func.coalesce(Message.cost_micros, 0)),
        )
        .where(Message.store_id == store_id, Message.created_at >= start, Message.created_at < end)
        .group_by(Message.channel)
    ).all()
    revenue = _last_touch_revenue(session, store_id, start, end, currency)
    total_micros = 0
    for channel, sent, delivered, failed, clicked, micros in rows:
        micros = int(micros or 0)
        total_micros += micros
        earned = revenue.get(channel, 0)
        out.channels[channel] = {
            "sent": int(sent),
            "delivered": int(delivered),
            "failed": int(failed or 0),
            "clicked": int(clicked),
            "cost": str(Decimal(micros) / MICROS),
            "recovered_revenue": earned,
            "revenue_per_cost": _ratio(earned, micros, currency),
        }
    out.cost = str(Decimal(total_micros) / MICROS)
    out.revenue_per_cost = _ratio(out.recovered_revenue.get(currency, 0), total_micros, currency)


def _last_touch_revenue(
    session: Session, store_id: str, start: datetime, end: datetime, currency: str
) -> dict[str, int]:
    """Each recovered order's revenue goes to the channel of the cart's last message that
    may have reached the shopper before the order (minor units)."""
    rows = session.execute(
        select(Order.id, Order.total, Message.channel, Message.created_at)
        .join(Message, Message.cart_id == Order.cart_id)
        .where(
            Order.store_id == store_id,
            Order.recovered.is_(True),
            Order.currency == currency,
            Order.placed_at >= start,
            Order.placed_at < end,
            Message.store_id == store_id,
            Message.created_at <= Order.placed_at,
            Message.status.in_([s.value for s in MAY_HAVE_REACHED]),
        )
    ).all()
    last: dict[str, tuple[datetime, str, int]] = {}
    for order_id, total, channel, at in rows:
        if order_id not in last or at > last[order_id][0]:
            last[order_id] = (at, channel, int(total))
    revenue: dict[str, int] = {}
    for _, channel, total in last.values():
        revenue[channel] = revenue.get(channel, 0) + total
    return revenue


def _ratio(revenue_minor: int, cost_micros: int, currency: str) -> float | None:
    """Revenue per unit of cost, both in ``currency``; None when nothing cost anything."""
    if cost_micros <= 0:
        return None
    return round(float(minor_to_decimal(revenue_minor, currency) / (cost_micros / MICROS)), 2)


def _is(status: MessageStatus) -> ColumnElement[int]:
    return case((Message.status == status.value, 1), else_=0)
