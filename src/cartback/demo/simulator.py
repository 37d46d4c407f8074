"""Simulated shoppers who use the store the way real ones do, through the real HTTP API.

Each shopper follows a :class:`Plan` drawn (with a seeded ``random.Random``) when the demo
starts: fill a cart, maybe reach checkout, then buy at once or leave. A shopper who left
reacts to each reminder as it lands in the outbox: ignores it, opens it (loads the open
pixel), or clicks its restore link (``/r/<token>``) and then buys or changes the cart.
Nothing here reads cartback's tables: what cartback counts is what the summary shows.
"""

from __future__ import annotations

import email
import email.policy
import enum
import heapq
import html
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx

from cartback.channels import OutboxChannel
from cartback.channels.outbox import CapturedEmail
from cartback.content import format_money
from cartback.demo.catalogue import (
    CATALOGUE,
    CURRENCY,
    FIRST_NAMES,
    LAST_NAMES,
    LOCALE,
    TIMEZONES,
    Product,
    cart_url,
    email_address,
)
from cartback.demo.clock import DemoClock
from cartback.demo.errors import DemoError

# Shoppers arrive over this much simulated time; the last one's journey then needs
# 30 min to be abandoned and 72 h for the last reminder.
ARRIVAL_WINDOW = timedelta(hours=8)


class Plan(enum.StrEnum):
    BUYS_NOW = "buys right away"
    BACK_AFTER_1 = "comes back after reminder 1 and buys"
    BACK_AFTER_2 = "comes back after reminder 2 and buys"
    CHANGES_CART = "comes back after reminder 1, changes the cart, leaves again"
    ONLY_READS = "opens reminders, never returns"
    GONE = "never returns"


# Shares of all shoppers; about a quarter of those who leave come back, a good
# (not a typical) result for a three-email journey.
PLAN_SHARES: dict[Plan, float] = {
    Plan.BUYS_NOW: 0.20,
    Plan.BACK_AFTER_1: 0.14,
    Plan.BACK_AFTER_2: 0.08,
    Plan.CHANGES_CART: 0.08,
    Plan.ONLY_READS: 0.28,
    Plan.GONE: 0.22,
}


class Reaction(enum.StrEnum):
    IGNORE = "ignore"
    OPEN = "open"
    BUY = "click and buy"
    CHANGE = "click and change the cart"


@dataclass
class Shopper:
    number: int
    first_name: str
    last_name: str
    email: str
    timezone: str
    plan: Plan
    arrives: timedelta  # after the demo starts
    reaches_checkout: bool  # else a logged-in shopper, known from the first cart event
    wants: list[Product]  # put in the cart in this order
    reactions: dict[int, Reaction]  # the n-th email received (1-based) -> what they do
    cart: list[Product] = field(default_factory=list)
    emails_received: int = 0

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def cart_id(self) -> str:
        return f"demo-cart-{self.number:03d}"

    @property
    def value(self) -> int:
        return sum(p.price for p in self.cart)

    def contact(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "first_name": self.first_name,
            "locale": LOCALE,
            "timezone": self.timezone,
            "consent": {"email": True},
            "consent_source": "checkout checkbox",
        }


def assign_plans(count: int, rng: random.Random) -> list[Plan]:
    """``count`` plans in PLAN_SHARES proportions (largest remainder), shuffled.

    At least one shopper comes back after reminder 1, so even a tiny demo shows a recovery.
    """
    exact = {plan: share * count for plan, share in PLAN_SHARES.items()}
    counts = {plan: math.floor(value) for plan, value in exact.items()}
    by_remainder = sorted(exact, key=lambda plan: exact[plan] - counts[plan], reverse=True)
    for plan in by_remainder[: count - sum(counts.values())]:
        counts[plan] += 1
    if count and counts[Plan.BACK_AFTER_1] == 0:
        counts[max(counts, key=lambda plan: counts[plan])] -= 1
        counts[Plan.BACK_AFTER_1] += 1
    plans = [plan for plan, n in counts.items() for _ in range(n)]
    rng.shuffle(plans)
    return plans


def _reactions(plan: Plan, rng: random.Random) -> dict[int, Reaction]:
    def maybe_open(chance: float) -> Reaction:
        return Reaction.OPEN if rng.random() < chance else Reaction.IGNORE

    if plan is Plan.BACK_AFTER_1:
        return {1: Reaction.BUY}
    if plan is Plan.BACK_AFTER_2:
        return {1: maybe_open(0.6), 2: Reaction.BUY}
    if plan is Plan.CHANGES_CART:  # emails 2-4 are the reminders for the changed cart
        return {1: Reaction.CHANGE, 2: maybe_open(0.5), 3: maybe_open(0.3)}
    if plan is Plan.ONLY_READS:
        return {1: Reaction.OPEN, 2: maybe_open(0.6), 3: maybe_open(0.4)}
    return {}


def make_shoppers(count: int, rng: random.Random) -> list[Shopper]:
    """``count`` shoppers, all decided up front from ``rng``: the same seed, the same story."""
    shoppers = []
    slot = ARRIVAL_WINDOW / max(count, 1)
    for number, plan in enumerate(assign_plans(count, rng), start=1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        shoppers.append(
            Shopper(
                number=number,
                first_name=first,
                last_name=last,
                email=email_address(first, last, number),
                timezone=rng.choice(TIMEZONES),
                plan=plan,
                arrives=slot * (number - 1) + slot * rng.uniform(0.1, 0.9),
                reaches_checkout=rng.random() < 0.7,
                wants=rng.sample(CATALOGUE, rng.choice((1, 1, 2, 2, 3))),
                reactions=_reactions(plan, rng),
            )
        )
    return shoppers


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def tracked_links(captured: CapturedEmail, base_url: str) -> tuple[str | None, str | None]:
    """The restore link and the open pixel in a captured email's HTML, if present."""
    message = email.message_from_bytes(captured.mime, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    part = message.get_body(preferencelist=("html",))
    body = str(part.get_content()) if part is not None else ""
    prefix = re.escape(base_url)
    restore = re.search(rf"{prefix}/r/[^\"'\s<>]+", body)
    pixel = re.search(rf"{prefix}/o/[^\"'\s<>]+", body)
    return (
        html.unescape(restore.group()) if restore else None,
        html.unescape(pixel.group()) if pixel else None,
    )


Say = Callable[[datetime, str], None]


class Simulator:
    """Runs every shopper's next steps when the clock reaches them; call :meth:`tick` often.

    ``client`` talks to the demo's API with the store's key; ``outbox`` is where shoppers
    "receive" their email. The clock is held at the next step (see :class:`DemoClock`),
    so each step happens at its simulated time however long the real requests take.
    """

    def __init__(
        self,
        shoppers: list[Shopper],
        *,
        client: httpx.Client,
        clock: DemoClock,
        outbox: OutboxChannel,
        base_url: str,
        rng: random.Random,
        say: Say,
    ) -> None:
        self.shoppers = shoppers
        self._by_email = {s.email: s for s in shoppers}
        self._client = client
        self._clock = clock
        self._outbox = outbox
        self._base_url = base_url
        self._rng = rng
        self._say = say
        self._due: list[tuple[datetime, int, Callable[[], None]]] = []
        self._seq = 0
        self._seen: set[str] = set()
        self._running = False
        self.came_back: dict[Reaction, int] = {Reaction.BUY: 0, Reaction.CHANGE: 0}
        self.start = clock.now()
        for shopper in shoppers:
            self.at(self.start + shopper.arrives, partial(self._add_next, shopper))

    @property
    def last_arrival(self) -> timedelta:
        return max((s.arrives for s in self.shoppers), default=timedelta(0))

    def next_due(self) -> datetime | None:
        return self._due[0][0] if self._due else None

    def at(self, moment: datetime, step: Callable[[], None]) -> None:
        """Run ``step`` when the clock reaches ``moment`` (it holds there until it ran)."""
        self._seq += 1
        heapq.heappush(self._due, (moment, self._seq, step))
        if not self._running:
            self._clock.hold("shoppers", self.next_due())

    def tick(self) -> None:
        """Deliver new email to its shoppers, then run every step that is due."""
        self._read_mail()
        while self._due and self._due[0][0] <= self._clock.now():
            moment, _, step = heapq.heappop(self._due)
            self._running = True
            self._clock.hold("shoppers", moment)  # the clock waits here until the step is done
            try:
                step()
            finally:
                self._running = False
            self._clock.hold("shoppers", self.next_due())

    def _later(self, delay: timedelta, step: Callable[[], None]) -> None:
        self.at(self._clock.now() + delay, step)

    # -- the store's side: events through POST /v1/events --------------------------

    def _post(self, shopper: Shopper, kind: str, **body: Any) -> None:
        self._seq += 1
        event = {
            "id": f"demo-evt-{shopper.number:03d}-{self._seq:05d}",
            "type": kind,
            "occurred_at": _iso(self._clock.now()),
            **body,
        }
        response = self._client.post("/v1/events", json=event)
        if response.status_code != 200:
            raise DemoError(f"POST /v1/events ({kind}) -> {response.status_code}: {response.text}")

    def _send_cart(self, shopper: Shopper, *, with_contact: bool) -> None:
        body: dict[str, Any] = {
            "cart": {
                "id": shopper.cart_id,
                "currency": CURRENCY,
                "items": [product.line(self._base_url) for product in shopper.cart],
                "restore_url": cart_url(self._base_url, shopper.cart_id),
            }
        }
        if with_contact:
            body["contact"] = shopper.contact()
        self._post(shopper, "cart.updated", **body)

    # -- a shopper's visit ------------------------------------------------------------

    def _add_next(self, shopper: Shopper) -> None:
        shopper.cart.append(shopper.wants[len(shopper.cart)])
        self._send_cart(shopper, with_contact=not shopper.reaches_checkout)
        if len(shopper.cart) < len(shopper.wants):
            self._later(_minutes(self._rng, 2, 6), partial(self._add_next, shopper))
        elif shopper.reaches_checkout:
            self._later(_minutes(self._rng, 3, 8), partial(self._checkout, shopper))
        elif shopper.plan is Plan.BUYS_NOW:
            self._later(_minutes(self._rng, 3, 8), partial(self._order, shopper))

    def _checkout(self, shopper: Shopper) -> None:
        self._post(
            shopper, "checkout.started", cart={"id": shopper.cart_id}, contact=shopper.contact()
        )
        if shopper.plan is Plan.BUYS_NOW:
            self._later(_minutes(self._rng, 3, 8), partial(self._order, shopper))

    def _order(self, shopper: Shopper, *, after_email: int | None = None) -> None:
        self._post(
            shopper,
            "order.placed",
            order={
                "id": f"demo-order-{shopper.number:03d}",
                "cart_id": shopper.cart_id,
                "total": shopper.value,
                "currency": CURRENCY,
            },
            contact={"email": shopper.email},
        )
        if after_email is not None:
            self.came_back[Reaction.BUY] += 1
            items = len(shopper.cart)
            self._say(
                self._clock.now(),
                f"{shopper.name} came back from reminder {after_email} and bought "
                f"{items} item{'s' if items > 1 else ''} for "
                f"{format_money(shopper.value, CURRENCY, LOCALE)}",
            )

    def _change_cart(self, shopper: Shopper, after_email: int) -> None:
        extra = self._rng.choice([p for p in CATALOGUE if p not in shopper.cart])
        shopper.cart.append(extra)
        self._send_cart(shopper, with_contact=False)
        self.came_back[Reaction.CHANGE] += 1
        self._say(
            self._clock.now(),
            f"{shopper.name} came back from reminder {after_email}, added "
            f"{extra.name} to the cart and left again",
        )

    # -- email: shoppers react to reminders as they land in the outbox ----------------

    def _read_mail(self) -> None:
        captured = self._outbox.list()
        if len(captured) == len(self._seen):
            return
        for message in sorted(captured, key=lambda m: m.captured_at):
            if message.message_id in self._seen:
                continue
            self._seen.add(message.message_id)
            shopper = self._by_email.get(message.to_address)
            if shopper is not None:
                shopper.emails_received += 1
                self._react(shopper, message, shopper.emails_received)

    def _react(self, shopper: Shopper, message: CapturedEmail, nth: int) -> None:
        reaction = shopper.reactions.get(nth, Reaction.IGNORE)
        restore, pixel = tracked_links(message, self._base_url)
        if reaction is Reaction.IGNORE:
            return
        if reaction is Reaction.OPEN:
            delay = _minutes(self._rng, 15, 10 * 60)
            self.at(message.captured_at + delay, partial(self._open, pixel))
            return
        delay = _minutes(self._rng, 20, 5 * 60)
        self.at(
            message.captured_at + delay,
            partial(self._click, shopper, reaction, nth, restore, pixel),
        )

    def _open(self, pixel: str | None) -> None:
        if pixel is not None:
            self._client.get(pixel)

    def _click(
        self,
        shopper: Shopper,
        reaction: Reaction,
        nth: int,
        restore: str | None,
        pixel: str | None,
    ) -> None:
        self._open(pixel)  # the images load as the email is read, before the click
        if restore is None:
            raise DemoError(f"email {nth} to {shopper.email} has no restore link")
        # The click is counted by /r/<token> itself; the redirect's target is the demo
        # store's cart page, which a shopper's browser would load but which counts nothing,
        # so it is not followed.
        response = self._client.get(restore, follow_redirects=False)
        if response.status_code != 302:
            raise DemoError(f"GET {restore} -> {response.status_code}, expected a redirect")
        if reaction is Reaction.BUY:
            self._later(_minutes(self._rng, 4, 15), partial(self._order, shopper, after_email=nth))
        else:
            self._later(_minutes(self._rng, 3, 10), partial(self._change_cart, shopper, nth))
