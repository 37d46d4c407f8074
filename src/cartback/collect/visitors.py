"""The write: one request's events for one visitor, in one transaction.

Carts and contacts go through :func:`cartback.ingest.service.apply_event`; around it this
module keeps the visitor: which carts its browser wrote (a cart belongs to one visitor),
the contact once one is captured (its carts follow), and whether it is a bot (its carts
are flagged ``junk`` and leave every journey).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts import timeline
from cartback.carts.models import Cart, CartStatus
from cartback.collect import bots, prompts
from cartback.collect.models import Visitor, VisitorCart
from cartback.collect.schemas import (
    Capture,
    SnippetCartUpdated,
    SnippetCheckoutStarted,
    SnippetContactCaptured,
    SnippetProductViewed,
    SnippetPromptDismissed,
    SnippetPromptShown,
    SnippetPromptSubmitted,
)
from cartback.collect.service import EVENT_PREFIX, Step, Visit, default_cart_id
from cartback.contacts import service as contacts
from cartback.contacts.models import Contact
from cartback.core.db import upsert_ignore
from cartback.flows import service as flows
from cartback.ingest import schemas as ingest
from cartback.ingest.models import Event
from cartback.ingest.service import apply_event, identify_contact

log = logging.getLogger("cartback.collect")


def collect(session: Session, visit: Visit) -> None:
    """Apply one request's events (the writer's unit of work: one transaction)."""
    _Visitor(session, visit).apply()


class _Visitor:
    def __init__(self, session: Session, visit: Visit) -> None:
        self.session = session
        self.visit = visit
        self.store_id = visit.store.id
        self.settings = visit.store.settings
        self.now = visit.now
        self.row = self._load()

    def _load(self) -> Visitor:
        first = min(self.visit.steps, key=lambda step: step.at)
        upsert_ignore(
            self.session,
            Visitor,
            {
                "store_id": self.store_id,
                "visitor_id": self.visit.visitor_id,
                "first_event_at": first.at,
                "first_event_type": first.event.type,
                "burst_count": 0,
                "created_at": self.now,
                "updated_at": self.now,
            },
            conflict=("store_id", "visitor_id"),
        )
        row = self.session.execute(
            select(Visitor)
            .where(Visitor.store_id == self.store_id, Visitor.visitor_id == self.visit.visitor_id)
            .with_for_update()
        ).scalar_one()
        if first.at < row.first_event_at:
            row.first_event_at, row.first_event_type = first.at, first.event.type
        row.updated_at = self.now
        return row

    def apply(self) -> None:
        if self.visit.junk:
            self.mark_junk(self.visit.junk)
        for step in self.visit.steps:
            event = step.event
            if isinstance(event, SnippetProductViewed):
                self._product_viewed(step, event)
            elif isinstance(event, SnippetCartUpdated):
                self._cart_event(step, event.cart.id, fast=self._too_many_updates(step.at))
            elif isinstance(event, SnippetCheckoutStarted):
                first_was_view = self.row.first_event_type == "product.viewed"
                fast = bots.too_fast_to_checkout(self.row.first_event_at, first_was_view, step.at)
                self._cart_event(step, event.cart.id, fast=fast)
            elif isinstance(event, SnippetContactCaptured):
                self._capture(step, event)
            elif isinstance(event, SnippetPromptShown | SnippetPromptDismissed):
                if self._record(step):
                    self._note_prompt(event.type, event.prompt, event.offer)
            elif isinstance(event, SnippetPromptSubmitted):
                kept = self._capture(step, event)
                if kept is not None:
                    self._note_prompt(event.type, event.prompt, event.offer)
                    self._offer(event, kept)
        self.session.flush()

    # --- events -------------------------------------------------------------------------

    def _record(self, step: Step, payload: dict[str, Any] | None = None) -> bool:
        """Store an event that no ingest rule applies; False when seen before."""
        return upsert_ignore(
            self.session,
            Event,
            {
                "store_id": self.store_id,
                "event_id": EVENT_PREFIX + step.event.id,
                "type": step.event.type,
                "occurred_at": step.at,
                "received_at": self.now,
                "payload": {
                    "visitor": self.visit.visitor_id,
                    **(payload or step.event.model_dump(mode="json")),
                },
            },
            conflict=("store_id", "event_id"),
        )

    def _apply(self, step: Step) -> bool:
        assert step.applied_as is not None
        return apply_event(
            self.session,
            store_id=self.store_id,
            settings=self.settings,
            event=step.applied_as,
            now=self.now,
        )

    def _product_viewed(self, step: Step, event: SnippetProductViewed) -> None:
        if self._record(step):
            self.row.last_product = event.product.model_dump(mode="json")

    def _cart_event(self, step: Step, given_id: str | None, *, fast: bool) -> None:
        external_id = given_id or default_cart_id(self.visit.visitor_id)
        cart = carts.get_by_external_id(self.session, self.store_id, external_id)
        if cart is not None and not self._owns(cart):
            # another browser's cart: a public key writes only its own visitor's carts
            self._record(step, {"refused": "cart_of_another_visitor"})
            log.info("collect.foreign_cart", extra={"store_id": self.store_id})
            return
        if fast:
            self.mark_junk(bots.IMPOSSIBLE_SPEED)
        if not self._apply(step):
            return
        cart = carts.get_by_external_id(self.session, self.store_id, external_id)
        if cart is not None:
            self._claim(cart)

    def _too_many_updates(self, at: datetime) -> bool:
        row = self.row
        if row.burst_at is None or abs(at - row.burst_at) >= timedelta(seconds=1):
            row.burst_at, row.burst_count = at, 0
        row.burst_count += 1
        return row.burst_count > self.settings.snippet.max_cart_updates_per_second

    def _capture(self, step: Step, event: Capture) -> ingest.ContactIn | None:
        """Identify the shopper and link this visitor to them: what was kept, or None when
        nothing personal is (a duplicate, a bot's capture, nothing the consent allows)."""
        if event.email and bots.is_disposable(event.email):
            self.mark_junk(bots.DISPOSABLE_EMAIL)
        applied = self._lawful(step, event) if self.row.junk_reason is None else None
        if applied is None:
            self._record(step, event.model_dump(mode="json", include={"type", "id", "at"}))
            return None
        if not self._apply(Step(step.event, step.at, applied)):
            return None
        contact = identify_contact(
            self.session,
            store_id=self.store_id,
            data=applied.contact,
            default_country=self.settings.country,
            now=self.now,
        )
        self._link(contact)
        return applied.contact

    def _lawful(self, step: Step, event: Capture) -> ingest.ContactIdentified | None:
        """What of a capture may be kept, as the event to apply; None for nothing.

        ``consent: false`` is an unticked box: it withdraws a consent the contact has, and
        says nothing otherwise. In EU mode an address is kept only with consent true for
        its channel; a capture with none only withdraws, from a contact we already have.
        """
        assert isinstance(step.applied_as, ingest.ContactIdentified)
        data = step.applied_as.contact
        existing = self._existing_contact(data)
        consent = {
            channel: granted
            for channel, granted in (data.consent or {}).items()
            if granted
            or (
                existing is not None
                and contacts.current_consent(self.session, contact=existing, channel=channel)
            )
        }
        update: dict[str, Any] = {"consent": consent or None}
        if self.settings.snippet.consent_mode == "eu":
            granted = {channel for channel, given in consent.items() if given}
            if not granted and (existing is None or not consent):
                return None  # nothing consented, nothing to withdraw
            if granted:
                update["email"] = data.email if "email" in granted else None
                update["phone"] = data.phone if "sms" in granted else None
        return step.applied_as.model_copy(update={"contact": data.model_copy(update=update)})

    def _existing_contact(self, data: ingest.ContactIn) -> Contact | None:
        email = contacts.normalize_email(data.email)
        phone = contacts.normalize_phone_number(data.phone, self.settings.country)
        for column, value in ((Contact.email, email), (Contact.phone, phone)):
            if value:
                found = (
                    self.session.execute(
                        select(Contact).where(Contact.store_id == self.store_id, column == value)
                    )
                    .scalars()
                    .first()
                )
                if found is not None:
                    return found
        return None

    # --- the visitor's carts ------------------------------------------------------------

    def _owns(self, cart: Cart) -> bool:
        owner = self.session.get(VisitorCart, (self.store_id, cart.id))
        return owner is None or owner.visitor_id == self.visit.visitor_id

    def _claim(self, cart: Cart) -> None:
        upsert_ignore(
            self.session,
            VisitorCart,
            {
                "store_id": self.store_id,
                "cart_id": cart.id,
                "visitor_id": self.visit.visitor_id,
                "created_at": self.now,
            },
            conflict=("store_id", "cart_id"),
        )
        if self.row.junk_reason is not None:
            self._junk_cart(cart)
        elif self.row.contact_id is not None and cart.status in carts.OPEN_STATUSES:
            contact = self.session.get(Contact, self.row.contact_id)
            if contact is not None:
                carts.attach_contact(self.session, cart, contact)

    def _carts(self) -> list[Cart]:
        return list(
            self.session.execute(
                select(Cart)
                .join(VisitorCart, VisitorCart.cart_id == Cart.id)
                .where(
                    VisitorCart.store_id == self.store_id,
                    VisitorCart.visitor_id == self.visit.visitor_id,
                )
                .order_by(Cart.last_activity_at.desc(), Cart.id)
            ).scalars()
        )

    def _open_cart(self) -> Cart | None:
        """The visitor's newest open cart (the one a prompt is about)."""
        return next((c for c in self._carts() if c.status in carts.OPEN_STATUSES), None)

    def _link(self, contact: Contact) -> None:
        """The visitor is this contact now: its open carts are theirs, and one that was
        left before we knew who left it may start its journey."""
        self.row.contact_id = contact.id
        for cart in self._carts():
            if cart.status not in carts.OPEN_STATUSES:
                continue
            carts.attach_contact(self.session, cart, contact)
            if (
                cart.status == CartStatus.ABANDONED
                and cart.junk_reason is None
                and not flows.ever_enrolled(self.session, store_id=self.store_id, cart_id=cart.id)
            ):
                flows.enroll(self.session, cart=cart, now=self.now)

    def mark_junk(self, reason: str) -> None:
        """The visitor is a bot: flag it and every cart it wrote (each leaves its journey)."""
        if self.row.junk_reason is not None:
            return
        self.row.junk_reason = reason
        log.info("collect.junk", extra={"store_id": self.store_id, "reason": reason})
        for cart in self._carts():
            self._junk_cart(cart)

    def _junk_cart(self, cart: Cart) -> None:
        if cart.junk_reason is not None:
            return
        cart.junk_reason = self.row.junk_reason
        self._note(cart, "cart.junk", reason=cart.junk_reason)
        flows.exit_journeys(
            self.session, store_id=self.store_id, cart_id=cart.id, reason="junk", now=self.now
        )

    def _note(self, cart: Cart, kind: str, **data: object) -> None:
        timeline.record(
            self.session, store_id=self.store_id, cart_id=cart.id, at=self.now, kind=kind, **data
        )

    # --- prompts ------------------------------------------------------------------------

    def _note_prompt(self, kind: str, prompt: str, offer: str) -> None:
        cart = self._open_cart()
        if cart is not None:
            self._note(cart, kind, prompt=prompt, offer=offer)

    def _offer(self, event: SnippetPromptSubmitted, kept: ingest.ContactIn) -> None:
        contact_id = self.row.contact_id
        assert contact_id is not None  # _capture linked it
        cart = self._open_cart()
        if event.offer == "send_cart":
            prompts.request_cart_email(
                self.session, cart=cart, contact_id=contact_id, email=kept.email, now=self.now
            )
        elif event.offer == "price_watch":
            prompts.watch_prices(
                self.session,
                store_id=self.store_id,
                cart=cart,
                product=self.row.last_product,
                contact_id=contact_id,
                channel="email" if kept.email and event.consented("email") else "sms",
                days=self.settings.snippet.price_watch_days,
                now=self.now,
            )
        elif cart is not None:  # coupons come later: the request is on the timeline
            self._note(cart, "coupon.requested")
