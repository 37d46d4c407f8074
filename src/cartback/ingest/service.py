"""Apply validated events: store each once, then change contacts, carts and journeys
in the same transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from cartback.carts import service as carts
from cartback.carts import timeline
from cartback.carts.models import Cart, CartStage, CartStatus
from cartback.contacts import service as contacts
from cartback.contacts.models import Contact
from cartback.core.db import upsert_ignore
from cartback.flows import service as flows
from cartback.ingest.models import Event
from cartback.ingest.schemas import (
    CartCleared,
    CartUpdated,
    CheckoutStarted,
    ContactIdentified,
    ContactIn,
    EventIn,
    MessageSentExternal,
    OrderFulfilled,
    OrderPlaced,
)
from cartback.stores.schemas import StoreSettings

log = logging.getLogger("cartback.ingest")


def apply_event(
    session: Session, *, store_id: str, settings: StoreSettings, event: EventIn, now: datetime
) -> bool:
    """Store and apply one event; False when this store has seen its id before."""
    stored = upsert_ignore(
        session,
        Event,
        {
            "store_id": store_id,
            "event_id": event.id,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "received_at": now,
            "payload": event.model_dump(mode="json"),
        },
        conflict=("store_id", "event_id"),
    )
    if not stored:
        log.debug("ingest.duplicate_event", extra={"store_id": store_id, "event_id": event.id})
        return False
    _Applier(session, store_id, settings, now).apply(event)
    return True


def identify_contact(
    session: Session, *, store_id: str, data: ContactIn, default_country: str | None, now: datetime
) -> Contact:
    """The store's contact these fields name (found or created, fields filled in)."""
    return contacts.identify(
        session,
        store_id=store_id,
        fields=contacts.ContactFields(
            email=data.email,
            phone=data.phone,
            first_name=data.first_name,
            locale=data.locale,
            timezone=data.timezone,
            external_id=data.external_id,
            country=data.country,
        ),
        now=now,
        default_country=default_country,
    )


class _Applier:
    def __init__(self, session: Session, store_id: str, settings: StoreSettings, now: datetime):
        self.session = session
        self.store_id = store_id
        self.settings = settings
        self.now = now

    def apply(self, event: EventIn) -> None:
        data = getattr(event, "contact", None)
        contact = self._contact(data, event.occurred_at) if data is not None else None
        if isinstance(event, CartUpdated):
            self._cart_updated(event, contact)
        elif isinstance(event, CheckoutStarted):
            self._checkout_started(event, contact)
        elif isinstance(event, ContactIdentified):
            self._contact_identified(event, contact)
        elif isinstance(event, OrderPlaced):
            self._order_placed(event, contact)
        elif isinstance(event, CartCleared):
            self._cart_cleared(event)
        elif isinstance(event, OrderFulfilled):
            carts.fulfil_order(
                self.session,
                store_id=self.store_id,
                external_id=event.order.id,
                at=event.occurred_at,
            )
        elif isinstance(event, MessageSentExternal) and contact is not None:
            contacts.sent_external(contact, at=event.occurred_at)

    def _contact(self, data: ContactIn, at: datetime) -> Contact | None:
        if not (data.email or data.phone or data.external_id):
            return None
        contact = identify_contact(
            self.session,
            store_id=self.store_id,
            data=data,
            default_country=self.settings.country,
            now=self.now,
        )
        proof = data.consent_proof.model_dump(exclude_none=True) if data.consent_proof else {}
        for channel, granted in (data.consent or {}).items():
            contacts.record_consent(
                self.session,
                contact=contact,
                channel=channel,
                granted=granted,
                source=data.consent_source,
                occurred_at=at,
                proof=proof,
            )
            if channel == "email" and not granted:
                flows.exit_journeys(
                    self.session,
                    store_id=self.store_id,
                    contact_id=contact.id,
                    reason="consent_withdrawn",
                    now=self.now,
                )
        return contact

    def _note(self, cart: Cart, event: EventIn, **data: object) -> None:
        # in the order we heard of it; when it happened is kept beside it
        timeline.record(
            self.session,
            store_id=self.store_id,
            cart_id=cart.id,
            at=self.now,
            kind=f"event.{event.type}",
            event_id=event.id,
            occurred_at=event.occurred_at.isoformat(),
            **data,
        )

    def _cart_updated(self, event: CartUpdated, contact: Contact | None) -> None:
        result = carts.apply_snapshot(
            self.session,
            store_id=self.store_id,
            snap=carts.Snapshot(
                external_id=event.cart.id,
                currency=event.cart.currency,
                items=[i.model_dump(mode="json") for i in event.cart.items],
                restore_url=event.cart.restore_url,
                occurred_at=event.occurred_at,
            ),
            abandon_after=self.settings.abandon_delay,
            now=self.now,
        )
        cart = result.cart
        if contact is not None:
            carts.attach_contact(self.session, cart, contact)
        self._note(cart, event, change=result.change.value, items=cart.item_count, value=cart.value)
        if result.change == carts.Change.REOPENED:
            self._exit(cart, "cart_changed")
        elif result.change == carts.Change.CLEARED:
            self._exit(cart, "cart_emptied")

    def _checkout_started(self, event: CheckoutStarted, contact: Contact | None) -> None:
        cart, _ = carts.get_or_create(
            self.session,
            store_id=self.store_id,
            external_id=event.cart.id,
            currency=self.settings.currency,
            at=event.occurred_at,
            now=self.now,
        )
        if contact is not None:
            carts.attach_contact(self.session, cart, contact)
        self._note(cart, event)
        if cart.status not in carts.OPEN_STATUSES:
            return
        cart.stage = CartStage.CHECKOUT
        if carts.touch(
            self.session,
            cart,
            at=event.occurred_at,
            abandon_after=self.settings.abandon_delay,
            now=self.now,
        ):
            self._exit(cart, "cart_changed")

    def _contact_identified(self, event: ContactIdentified, contact: Contact | None) -> None:
        if event.cart is None or contact is None:
            return
        cart = carts.get_by_external_id(self.session, self.store_id, event.cart.id)
        if cart is None:
            return
        carts.attach_contact(self.session, cart, contact)
        self._note(cart, event)
        # a cart abandoned before we knew who left it: the shopper is reachable now
        if cart.status == CartStatus.ABANDONED and not flows.ever_enrolled(
            self.session, store_id=self.store_id, cart_id=cart.id
        ):
            flows.enroll(self.session, cart=cart, now=self.now)

    def _order_placed(self, event: OrderPlaced, contact: Contact | None) -> None:
        result = carts.record_order(
            self.session,
            store_id=self.store_id,
            data=carts.OrderIn(
                external_id=event.order.id,
                total=event.order.total,
                currency=event.order.currency,
                placed_at=event.occurred_at,
                discount_codes=event.order.discount_codes,
                cart_external_id=event.order.cart_id,
                contact=contact,
            ),
            attribution=self.settings.attribution,
            now=self.now,
        )
        if result.order is None:
            return
        if contact is not None:
            contacts.engaged(contact, at=event.occurred_at)
        if result.cart is not None and result.order.recovered:
            flows.schedule_team_alert(
                self.session,
                cart=result.cart,
                settings=self.settings,
                kind="recovered",
                now=self.now,
            )
        if result.cart is not None:
            self._note(
                result.cart,
                event,
                order_id=event.order.id,
                total=event.order.total,
                currency=event.order.currency,
                recovered=result.order.recovered,
            )
            self._exit(result.cart, "purchased")
        contact_id = contact.id if contact else (result.cart.contact_id if result.cart else None)
        if contact_id:
            flows.exit_journeys(
                self.session,
                store_id=self.store_id,
                contact_id=contact_id,
                reason="purchased",
                now=self.now,
            )

    def _cart_cleared(self, event: CartCleared) -> None:
        cart = carts.get_by_external_id(self.session, self.store_id, event.cart.id)
        if cart is None or cart.status not in carts.OPEN_STATUSES:
            return
        if cart.snapshot_at is not None and event.occurred_at < cart.snapshot_at:
            self._note(cart, event, change="stale")
            return
        cart.items = []
        cart.value = 0
        cart.item_count = 0
        cart.snapshot_at = event.occurred_at
        carts.close(self.session, cart, status=CartStatus.CLEARED, at=event.occurred_at)
        self._note(cart, event)
        self._exit(cart, "cart_emptied")

    def _exit(self, cart: Cart, reason: str) -> None:
        flows.exit_journeys(
            self.session, store_id=self.store_id, cart_id=cart.id, reason=reason, now=self.now
        )
