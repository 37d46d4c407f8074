"""Read what the contact policy judges: each channel's address, consent and suppression,
the contact's local time, and the messages already sent. The judging is pure
(:mod:`cartback.flows.policy`); this module only loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_zones
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cartback.carts.models import Cart, Order
from cartback.contacts.models import Consent, Contact, PushSubscription, Suppression
from cartback.contacts.phones import PhoneResult, normalize_phone
from cartback.flows.models import Enrollment, EnrollmentStatus
from cartback.flows.policy import ChannelState, PolicyInput
from cartback.messages.models import Message, MessageStatus
from cartback.stores.schemas import CHANNELS, StoreSettings

# Statuses of a message that may have reached the shopper: they count against the budget.
REACHED = frozenset(
    {
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.OPENED,
        MessageStatus.CLICKED,
        MessageStatus.UNKNOWN,
        MessageStatus.COMPLAINED,
        MessageStatus.UNSUBSCRIBED,
    }
)
FAILED = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED})


@dataclass(frozen=True)
class Reach:
    """How each channel reaches a contact, and where they are."""

    channels: dict[str, ChannelState]
    timezone: str
    country: str | None
    push: list[PushSubscription] = field(default_factory=list)


@dataclass(frozen=True)
class StepFacts:
    policy: PolicyInput
    reach: Reach
    previous_sent: bool
    tried: frozenset[str]  # this step's channels that failed for good
    messages: dict[str, Message]  # this step's messages by channel


def reach(session: Session, contact: Contact, settings: StoreSettings) -> Reach:
    """Each channel's address (or why there is none), consent and suppression."""
    phone = (
        normalize_phone(contact.phone, country=contact.country or settings.country)
        if contact.phone
        else None
    )
    phone_e164 = phone.e164 if phone else None
    push = _push_subscriptions(session, contact, settings)
    addresses: dict[str, tuple[str | None, str | None]] = {
        "email": (contact.email, None if contact.email else "no_email_address"),
        "sms": _sms_address(phone, settings),
        "whatsapp": _configured(
            settings.channels.whatsapp is not None,
            "whatsapp",
            (phone_e164, None)
            if phone_e164
            else (None, "no_phone" if not phone else "invalid_phone"),
        ),
        "telegram": _configured(
            settings.channels.telegram is not None,
            "telegram",
            (contact.telegram_chat_id, None if contact.telegram_chat_id else "no_telegram_chat"),
        ),
        "push": _configured(
            settings.channels.webpush is not None or settings.channels.fcm is not None,
            "push",
            (f"{len(push)} devices", None) if push else (None, "no_push_subscription"),
        ),
    }
    consents = _consents(session, contact)
    suppressed = _suppressions(session, contact.store_id, addresses)
    channels = {
        name: ChannelState(
            address=address,
            unreachable=why,
            consent=consents.get(name),
            suppressed=suppressed.get(name),
        )
        for name, (address, why) in addresses.items()
    }
    return Reach(
        channels=channels,
        timezone=contact.timezone or _phone_zone(phone_e164) or settings.timezone,
        country=contact.country or (phone.country if phone else None) or settings.country,
        push=push,
    )


def _configured(
    configured: bool, channel: str, address: tuple[str | None, str | None]
) -> tuple[str | None, str | None]:
    return address if configured else (None, f"{channel}_not_configured")


def _sms_address(
    phone: PhoneResult | None, settings: StoreSettings
) -> tuple[str | None, str | None]:
    if settings.channels.sms is None:
        return None, "sms_not_configured"
    if phone is None:
        return None, "no_phone"
    if phone.e164 is None:
        return None, "invalid_phone"
    if not phone.sms_ok:
        return None, f"{phone.kind}_phone"
    return phone.e164, None


@lru_cache(maxsize=4096)
def _phone_zone(e164: str | None) -> str | None:
    if not e164:
        return None
    zones = [z for z in phone_zones.time_zones_for_number(phonenumbers.parse(e164)) if "/" in z]
    return zones[0] if zones and "Unknown" not in zones[0] else None


def _consents(session: Session, contact: Contact) -> dict[str, bool]:
    """The newest consent ledger entry per channel."""
    rows = session.execute(
        select(Consent.channel, Consent.granted)
        .where(Consent.store_id == contact.store_id, Consent.contact_id == contact.id)
        .order_by(Consent.occurred_at.desc(), Consent.id.desc())
    ).all()
    newest: dict[str, bool] = {}
    for channel, granted in rows:
        newest.setdefault(channel, granted)
    return newest


def _suppressions(
    session: Session, store_id: str, addresses: dict[str, tuple[str | None, str | None]]
) -> dict[str, str]:
    pairs = [(ch, addr) for ch, (addr, _) in addresses.items() if addr and ch != "push"]
    if not pairs:
        return {}
    rows = session.execute(
        select(Suppression.channel, Suppression.address, Suppression.reason).where(
            Suppression.store_id == store_id,
            or_(
                *((Suppression.channel == ch) & (Suppression.address == addr) for ch, addr in pairs)
            ),
        )
    ).all()
    return {channel: reason for channel, _, reason in rows}


def _push_subscriptions(
    session: Session, contact: Contact, settings: StoreSettings
) -> list[PushSubscription]:
    kinds = [
        kind
        for kind, on in (("web", settings.channels.webpush), ("fcm", settings.channels.fcm))
        if on is not None
    ]
    if not kinds:
        return []
    return list(
        session.execute(
            select(PushSubscription)
            .where(
                PushSubscription.store_id == contact.store_id,
                PushSubscription.contact_id == contact.id,
                PushSubscription.kind.in_(kinds),
            )
            .order_by(PushSubscription.created_at.desc())
            .limit(10)
        ).scalars()
    )


def step_facts(
    session: Session,
    *,
    enrollment: Enrollment,
    cart: Cart,
    contact: Contact,
    settings: StoreSettings,
    step_index: int,
    now: datetime,
) -> StepFacts:
    """Everything the policy needs for step ``step_index`` of this enrollment."""
    found = reach(session, contact, settings)
    policy = settings.policy
    rows = session.execute(
        select(Message).where(
            Message.store_id == contact.store_id,
            Message.contact_id == contact.id,
            or_(Message.enrollment_id == enrollment.id, Message.created_at > now - policy.gap),
        )
    ).scalars()
    mine: dict[str, Message] = {}
    journey = journey_sms = 0
    previous_sent = False
    last: datetime | None = None
    for message in rows:
        reached = message.status in REACHED
        same_step = message.enrollment_id == enrollment.id and message.step_index == step_index
        if same_step:
            mine[message.channel] = message
            continue
        if reached and (last is None or message.created_at > last):
            last = message.created_at
        if message.enrollment_id != enrollment.id or not reached:
            continue
        journey += 1
        journey_sms += message.channel == "sms"
        previous_sent = previous_sent or message.step_index == step_index - 1
    assert cart.abandoned_at is not None
    facts = PolicyInput(
        channels=found.channels,
        timezone=found.timezone,
        country=found.country,
        orders_count=contact.orders_count,
        abandoned_at=cart.abandoned_at,
        last_message_at=last,
        journey_messages=journey,
        journey_sms=journey_sms,
        external_message_at=contact.external_message_at,
        pending_order_at=_pending_order(session, contact, exclude_cart=cart.id),
        ignored_journeys=_ignored_journeys(session, contact, enrollment.id, policy.sunset_after),
    )
    tried = frozenset(ch for ch, m in mine.items() if m.status in FAILED)
    return StepFacts(facts, found, previous_sent, tried, mine)


def _pending_order(session: Session, contact: Contact, *, exclude_cart: str) -> datetime | None:
    """The newest order of the contact not yet fulfilled (another cart's)."""
    cart_matches = Order.cart_id.is_(None) | (Order.cart_id != exclude_cart)
    return session.execute(
        select(func.max(Order.placed_at)).where(
            Order.store_id == contact.store_id,
            Order.contact_id == contact.id,
            Order.fulfilled_at.is_(None),
            cart_matches,
        )
    ).scalar_one_or_none()


def _ignored_journeys(session: Session, contact: Contact, current: str, limit: int) -> int:
    """How many of the contact's newest ended journeys, in a row, got no open, no click
    and no order (a journey that ended by a purchase was not ignored)."""
    if limit == 0:
        return 0
    ended = session.execute(
        select(Enrollment.id, Enrollment.started_at, Enrollment.exit_reason)
        .where(
            Enrollment.store_id == contact.store_id,
            Enrollment.contact_id == contact.id,
            Enrollment.status != EnrollmentStatus.ACTIVE,
            Enrollment.id != current,
        )
        .order_by(Enrollment.started_at.desc())
        .limit(limit)
    ).all()
    engaged_ids = set(
        session.execute(
            select(Message.enrollment_id).where(
                Message.enrollment_id.in_([row.id for row in ended]),
                or_(Message.opened_at.is_not(None), Message.clicked_at.is_not(None)),
            )
        ).scalars()
    )
    count = 0
    for row in ended:
        engaged_since = (
            contact.last_engaged_at is not None and contact.last_engaged_at >= row.started_at
        )
        if row.exit_reason == "purchased" or row.id in engaged_ids or engaged_since:
            break
        count += 1
    return count


__all__ = ["CHANNELS", "REACHED", "Reach", "StepFacts", "reach", "step_facts"]
