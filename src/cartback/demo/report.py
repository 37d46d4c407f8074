"""What the demo prints: a live progress line and the closing summary with its charts.

The numbers come from cartback's own tables and :func:`cartback.analytics.service.stats`,
never from the simulator's plans, so the summary shows what the product measured.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartback.analytics.service import Stats
from cartback.carts.models import Cart, CartStatus
from cartback.content import format_money
from cartback.messages.models import Message

BAR_WIDTH = 32


@dataclass(frozen=True)
class Counts:
    """Where the store's carts and emails are right now."""

    carts: int
    active: int
    abandoned: int
    purchased: int
    recovered: int
    emails_sent: int


def live_counts(session: Session, store_id: str) -> Counts:
    by_status = dict(
        session.execute(
            select(Cart.status, func.count()).where(Cart.store_id == store_id).group_by(Cart.status)
        ).all()
    )
    sent = session.execute(
        select(func.count(Message.sent_at)).where(Message.store_id == store_id)
    ).scalar_one()
    return Counts(
        carts=sum(by_status.values()),
        active=by_status.get(CartStatus.ACTIVE, 0),
        abandoned=by_status.get(CartStatus.ABANDONED, 0),
        purchased=by_status.get(CartStatus.PURCHASED, 0),
        recovered=by_status.get(CartStatus.RECOVERED, 0),
        emails_sent=int(sent),
    )


def carts_created(session: Session, store_id: str, start: datetime, end: datetime) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                Cart.store_id == store_id, Cart.created_at >= start, Cart.created_at < end
            )
        ).scalar_one()
    )


def elapsed(start: datetime, moment: datetime) -> str:
    """Simulated time since the demo began: ``+ 26h05``."""
    minutes = max(int((moment - start) / timedelta(minutes=1)), 0)
    return f"+{minutes // 60:3d}h{minutes % 60:02d}"


def progress_line(counts: Counts) -> str:
    """``carts 40  active 2  abandoned 21  bought 5  recovered 2  emails 20`` (fits 80
    columns with the time in front)."""
    return (
        f"carts {counts.carts}  active {counts.active}  abandoned {counts.abandoned}  "
        f"bought {counts.purchased}  recovered {counts.recovered}  emails {counts.emails_sent}"
    )


class Console:
    """Plain lines everywhere; on a terminal also one live status line kept at the bottom."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._showing_live = False
        encoding = (getattr(self.stream, "encoding", None) or "").lower().replace("-", "")
        self.bar_char = "█" if encoding == "utf8" else "#"

    def line(self, text: str = "") -> None:
        self._clear_live()
        self.stream.write(text + "\n")
        self.stream.flush()

    def status(self, text: str) -> None:
        """Replace the live line (terminals only; a log file gets the periodic lines)."""
        if not self.live:
            return
        width = shutil.get_terminal_size().columns - 1  # a wrapped line cannot be redrawn
        self.stream.write("\r\x1b[K" + text[:width])
        self.stream.flush()
        self._showing_live = True

    def _clear_live(self) -> None:
        if self._showing_live:
            self.stream.write("\r\x1b[K")
            self._showing_live = False


def bar_chart(rows: list[tuple[str, int]], *, char: str, width: int = BAR_WIDTH) -> list[str]:
    """One bar per row, scaled to the largest value; a non-zero value always shows.

    >>> bar_chart([("a", 4), ("b", 1), ("c", 0)], char="#", width=8)
    ['  a  ########  4', '  b  ##        1', '  c            0']
    """
    top = max((value for _, value in rows), default=0) or 1
    label_width = max(len(label) for label, _ in rows)
    lines = []
    for label, value in rows:
        length = max(round(value / top * width), 1 if value else 0)
        lines.append(f"  {label:<{label_width}}  {char * length:<{width}}  {value}")
    return lines


@dataclass(frozen=True)
class Summary:
    hours: float
    real_seconds: float
    created: int
    purchased: int
    stats: Stats
    currency: str
    locale: str


def summary_lines(summary: Summary, *, char: str) -> list[str]:
    stats = summary.stats
    revenue = format_money(
        stats.recovered_revenue.get(summary.currency, 0), summary.currency, summary.locale
    )
    rows = [
        ("Carts created", str(summary.created)),
        ("Bought right away", f"{summary.purchased}   (no reminder needed)"),
        ("Abandoned", str(stats.carts_abandoned)),
        (
            "Recovered",
            f"{stats.carts_recovered}   ({stats.recovery_rate:.0%} of abandoned carts came back"
            " and bought after a reminder)",
        ),
        ("Recovered revenue", f"{revenue}   ({stats.orders_recovered} orders)"),
        ("Emails sent", str(stats.emails_sent)),
        ("Emails opened", str(stats.emails_opened)),
        ("Emails clicked", str(stats.emails_clicked)),
    ]
    width = max(len(label) for label, _ in rows)
    title = f"Summary: {summary.hours:.0f} simulated hours in {summary.real_seconds:.0f} seconds"
    lines = [title, "-" * len(title)]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += ["", "  Carts"]
    lines += bar_chart(
        [
            ("bought right away", summary.purchased),
            ("abandoned", stats.carts_abandoned),
            ("  recovered", stats.carts_recovered),
            ("  not (yet) recovered", stats.carts_abandoned - stats.carts_recovered),
        ],
        char=char,
    )
    lines += ["", "  Reminder emails"]
    lines += bar_chart(
        [
            ("sent", stats.emails_sent),
            ("opened", stats.emails_opened),
            ("clicked", stats.emails_clicked),
        ],
        char=char,
    )
    return lines
