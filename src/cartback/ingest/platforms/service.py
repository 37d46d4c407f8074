"""Apply one mapped platform delivery inside the caller's transaction: once per delivery,
never an older version over a newer one, and the order matched to its cart."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts.models import CartStage, CartStatus
from cartback.ingest.platforms import links
from cartback.ingest.platforms._common import Mapped, Ref, ordered_key
from cartback.ingest.schemas import CartCleared, CartRef, CartUpdated, EventIn, OrderPlaced
from cartback.ingest.service import apply_event
from cartback.stores.schemas import StoreSettings

log = logging.getLogger("cartback.ingest")
Status = Literal["accepted", "duplicate", "stale", "ignored"]
_BOUGHT = (CartStatus.PURCHASED, CartStatus.RECOVERED)


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str | None = None


def apply(
    session: Session, *, store_id: str, settings: StoreSettings, mapped: Mapped, now: datetime
) -> Outcome:
    """Apply ``mapped`` once. ``duplicate``: this delivery was applied before; ``stale``: a
    newer version was; ``ignored``: it changes nothing (the detail says why)."""
    event = mapped.event
    if event is None:
        return Outcome("ignored", mapped.reason)
    if links.seen(session, store_id=store_id, event_id=event.id):
        return Outcome("duplicate")
    step = _Apply(session, store_id, settings, mapped, now)
    if isinstance(event, CartUpdated):
        return step.cart(event)
    if isinstance(event, OrderPlaced):
        return step.order(event)
    if isinstance(event, CartCleared):
        return step.cleared(event)
    return step.other(event)


@dataclass
class _Apply:
    session: Session
    store_id: str
    settings: StoreSettings
    mapped: Mapped
    now: datetime

    def _event(self, event: EventIn) -> bool:
        return apply_event(
            self.session, store_id=self.store_id, settings=self.settings, event=event, now=self.now
        )

    def cart(self, event: CartUpdated) -> Outcome:
        cart_id = event.cart.id
        key = ordered_key(self.mapped.platform, cart_id)
        if links.recall(self.session, store_id=self.store_id, key=key) is not None:
            return Outcome("ignored", "this checkout became an order already")
        cart = carts.get_by_external_id(self.session, self.store_id, cart_id)
        if cart is not None and cart.status in _BOUGHT:
            return Outcome("ignored", "this cart was bought already")
        if cart is not None and cart.snapshot_at and event.occurred_at <= cart.snapshot_at:
            return Outcome("stale", "a newer version of this cart was applied already")
        self._event(event)
        for name in self.mapped.links:
            links.remember(
                self.session,
                store_id=self.store_id,
                key=name,
                target=cart_id,
                at=event.occurred_at,
                now=self.now,
            )
        started = self.mapped.started
        cart = carts.get_by_external_id(self.session, self.store_id, cart_id)
        if (
            started is not None
            and cart is not None
            and cart.status in carts.OPEN_STATUSES
            and cart.stage != CartStage.CHECKOUT
        ):
            self._event(started)
        return Outcome("accepted")

    def order(self, event: OrderPlaced) -> Outcome:
        cart_id = self._find_cart(self.mapped.refs)
        if cart_id is not None and cart_id != event.order.cart_id:
            order = event.order.model_copy(update={"cart_id": cart_id})
            event = event.model_copy(update={"order": order})
        self._event(event)
        # a snapshot of this cart arriving late (deliveries are unordered) is no cart
        names = {ref.value for ref in self.mapped.refs if not ref.link}
        if cart_id is not None:
            names.add(cart_id)
        for name in sorted(names):
            links.remember(
                self.session,
                store_id=self.store_id,
                key=ordered_key(self.mapped.platform, name),
                target=event.order.id,
                at=event.occurred_at,
                now=self.now,
            )
        return Outcome("accepted")

    def cleared(self, event: CartCleared) -> Outcome:
        cart_id = self._find_cart(self.mapped.refs) if self.mapped.refs else event.cart.id
        if cart_id is None:
            return Outcome("ignored", "no cart is known by the names in this delivery")
        self._event(event.model_copy(update={"cart": CartRef(id=cart_id)}))
        return Outcome("accepted")

    def other(self, event: EventIn) -> Outcome:
        key = self.mapped.version_key
        if key and not links.newer(
            self.session, store_id=self.store_id, key=key, at=event.occurred_at, now=self.now
        ):
            return Outcome("stale", "a newer version of this record was applied already")
        self._event(event)
        return Outcome("accepted")

    def _find_cart(self, refs: tuple[Ref, ...]) -> str | None:
        """The first name that finds one of this store's carts."""
        for ref in refs:
            cart_id = (
                links.recall(self.session, store_id=self.store_id, key=ref.value)
                if ref.link
                else ref.value
            )
            if cart_id and carts.get_by_external_id(self.session, self.store_id, cart_id):
                return cart_id
        return None
