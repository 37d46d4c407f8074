"""``GET /v1/carts/{id}``: a cart with its journeys, messages, orders and whole timeline."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from cartback.carts import timeline
from cartback.carts.models import Cart, Order
from cartback.carts.service import get_by_external_id
from cartback.contacts.models import Contact
from cartback.errors import NotFound
from cartback.flows.models import Enrollment, Flow
from cartback.messages.models import Message
from cartback.stores.api import SessionDep, StoreDep

router = APIRouter(tags=["carts"])


@router.get("/v1/carts/{cart_id}", summary="A cart, its status and its timeline")
def get_cart(cart_id: str, store: StoreDep, session: SessionDep) -> dict[str, Any]:
    cart = get_by_external_id(session, store.id, cart_id)
    if cart is None:
        raise NotFound(f"This store has no cart with id {cart_id!r}", code="cart_not_found")
    return _cart_body(session, cart)


def _cart_body(session: SessionDep, cart: Cart) -> dict[str, Any]:
    contact = session.get(Contact, cart.contact_id) if cart.contact_id else None
    journeys = session.execute(
        select(Enrollment, Flow.version)
        .join(Flow, Flow.id == Enrollment.flow_id)
        .where(Enrollment.store_id == cart.store_id, Enrollment.cart_id == cart.id)
        .order_by(Enrollment.started_at)
    ).all()
    messages = session.execute(
        select(Message)
        .where(Message.store_id == cart.store_id, Message.cart_id == cart.id)
        .order_by(Message.created_at, Message.step_index)
    ).scalars()
    orders = session.execute(
        select(Order).where(Order.store_id == cart.store_id, Order.cart_id == cart.id)
    ).scalars()
    return {
        "id": cart.external_id,
        "status": cart.status,
        "stage": cart.stage,
        "currency": cart.currency,
        "value": cart.value,
        "item_count": cart.item_count,
        "items": cart.items,
        "restore_url": cart.restore_url,
        "contact": None
        if contact is None
        else {
            "email": contact.email,
            "phone": contact.phone,
            "first_name": contact.first_name,
            "locale": contact.locale,
            "timezone": contact.timezone,
            "country": contact.country,
        },
        "last_activity_at": cart.last_activity_at,
        "abandon_at": cart.abandon_at,
        "abandoned_at": cart.abandoned_at,
        "closed_at": cart.closed_at,
        "reminders_sent": cart.reminders_sent,
        "journeys": [
            {
                "id": e.id,
                "status": e.status,
                "exit_reason": e.exit_reason,
                "next_step": e.step_index,
                "flow_version": version,
                "started_at": e.started_at,
                "next_due_at": e.next_due_at,
                "ended_at": e.ended_at,
            }
            for e, version in journeys
        ],
        "messages": [
            {
                "id": m.id,
                "step": m.step_index,
                "channel": m.channel,
                "template": m.template,
                "status": m.status,
                "subject": m.subject,
                "to": m.to_address,
                "attempts": m.attempts,
                "segments": m.segments,
                "cost_micros": m.cost_micros,
                "provider": m.provider,
                "sent_at": m.sent_at,
                "delivered_at": m.delivered_at,
                "opened_at": m.opened_at,
                "clicked_at": m.clicked_at,
                "error_code": m.error_code,
                "error_reason": m.error_reason,
            }
            for m in messages
        ],
        "orders": [
            {
                "id": o.external_id,
                "total": o.total,
                "currency": o.currency,
                "recovered": o.recovered,
                "discount_codes": o.discount_codes,
                "placed_at": o.placed_at,
            }
            for o in orders
        ],
        "timeline": [
            {"at": t.at, "kind": t.kind, **t.data}
            for t in timeline.entries(session, store_id=cart.store_id, cart_id=cart.id)
        ],
    }
