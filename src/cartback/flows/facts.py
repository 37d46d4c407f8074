"""Read what the contact policy judges: each channel's address, consent and suppression,
the contact's local time, and the messages already sent. The judging is pure
(:mod:`cartback.flows.policy`); this module only loads.

A journey step reads everything in **one statement** (a ``UNION ALL`` of the consent
ledger, the suppressions of the contact's addresses, the contact's messages of this
journey and of the last ``min_gap``, and, when the policy can use them, the newest
unfulfilled order and the last ended journeys). Each branch reads its own index; the
statement is built once per shape and only binds values, so a step pays one round trip
and no statement building (bench/send.py, docs/benchmarks.md M9).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import phonenumbers
from phonenumbers import timezone as phone_zones
from sqlalchemy import (
    CompoundSelect,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
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

# Channels whose address can be suppressed (a push subscription is removed instead).
_SUPPRESSIBLE = ("email", "sms", "whatsapp", "telegram")


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


# --- the one statement --------------------------------------------------------------
#
# Every branch returns the same seven columns: (k, channel, ref, ref2, txt, num, at);
# ``k`` says which branch a row comes from. The first branch gives the column types.

_M = cast(Table, Message.__table__).c
_C = cast(Table, Consent.__table__).c
_S = cast(Table, Suppression.__table__).c
_O = cast(Table, Order.__table__).c
_E = cast(Table, Enrollment.__table__).c


def _k(name: str) -> Any:
    return literal_column(f"'{name}'", String()).label("k")


def _nulls(*names: str) -> list[Any]:
    return [null().label(name) for name in names]


def _messages_branch() -> Any:
    # this journey's messages, and the contact's messages of the last min_gap
    return select(
        _k("m"),
        _M.channel.label("channel"),
        _M.id.label("ref"),
        _M.enrollment_id.label("ref2"),
        _M.status.label("txt"),
        _M.step_index.label("num"),
        _M.created_at.label("at"),
    ).where(
        _M.store_id == bindparam("sid"),
        _M.contact_id == bindparam("cid"),
        or_(_M.enrollment_id == bindparam("eid"), _M.created_at > bindparam("since")),
    )


def _consents_branch() -> Any:
    # the whole ledger of the contact (a few rows); the newest per channel wins
    return select(
        _k("c"),
        _C.channel,
        _C.id,
        *_nulls("ref2", "txt"),
        case((_C.granted, 1), else_=0),
        _C.occurred_at,
    ).where(_C.store_id == bindparam("sid"), _C.contact_id == bindparam("cid"))


def _suppressions_branch() -> Any:
    # one address per channel, bound even when absent (``address = NULL`` matches nothing),
    # so the statement has one shape whatever the contact has
    pairs = [
        and_(_S.channel == literal_column(f"'{ch}'"), _S.address == bindparam(f"a_{ch}"))
        for ch in _SUPPRESSIBLE
    ]
    return select(
        _k("s"), _S.channel, *_nulls("ref", "ref2"), _S.reason, *_nulls("num", "at")
    ).where(_S.store_id == bindparam("sid"), or_(*pairs))


def _order_branch() -> Any:
    # the newest unfulfilled order of the contact for another cart
    return select(
        _k("o"), *_nulls("channel", "ref", "ref2", "txt", "num"), func.max(_O.placed_at)
    ).where(
        _O.store_id == bindparam("sid"),
        _O.contact_id == bindparam("cid"),
        _O.fulfilled_at.is_(None),
        or_(_O.cart_id.is_(None), _O.cart_id != bindparam("cart")),
    )


def _ended_branch() -> Any:
    # the contact's newest ended journeys (sunset), each with "was anything opened/clicked"
    engaged = exists().where(
        _M.enrollment_id == _E.id, or_(_M.opened_at.is_not(None), _M.clicked_at.is_not(None))
    )
    newest = (
        select(_E.id, _E.started_at, _E.exit_reason, case((engaged, 1), else_=0).label("engaged"))
        .where(
            _E.store_id == bindparam("sid"),
            _E.contact_id == bindparam("cid"),
            _E.status != literal_column(f"'{EnrollmentStatus.ACTIVE.value}'"),
            _E.id != bindparam("eid"),
        )
        .order_by(_E.started_at.desc())
        .limit(bindparam("sunset", type_=Integer()))
        .subquery("ended")
    )
    return select(
        _k("e"),
        *_nulls("channel"),
        newest.c.id,
        *_nulls("ref2"),
        newest.c.exit_reason,
        newest.c.engaged,
        newest.c.started_at,
    )


_statements: dict[tuple[bool, bool, bool], CompoundSelect[Any]] = {}
_statements_lock = threading.Lock()


def _facts_statement(messages: bool, orders: bool, ended: bool) -> CompoundSelect[Any]:
    """The UNION ALL for this shape, built once (its cache key is then memoized)."""
    key = (messages, orders, ended)
    found = _statements.get(key)
    if found is None:
        branches = [_messages_branch()] if messages else []
        branches += [_consents_branch(), _suppressions_branch()]
        if orders:
            branches.append(_order_branch())
        if ended:
            branches.append(_ended_branch())
        found = union_all(*branches)
        with _statements_lock:
            _statements[key] = found
    return found


# --- addresses (pure) -----------------------------------------------------------------


def _phone(contact: Contact, settings: StoreSettings) -> PhoneResult | None:
    if not contact.phone:
        return None
    return normalize_phone(contact.phone, country=contact.country or settings.country)


def _addresses(
    contact: Contact,
    settings: StoreSettings,
    phone: PhoneResult | None,
    push: list[PushSubscription],
) -> dict[str, tuple[str | None, str | None]]:
    """Each channel's (address, why there is none)."""
    phone_e164 = phone.e164 if phone else None
    return {
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


# --- reading ---------------------------------------------------------------------------


@dataclass
class _Rows:
    """The facts statement's rows, sorted by branch."""

    consents: list[tuple[datetime, str, str, bool]] = field(default_factory=list)
    suppressed: dict[str, str] = field(default_factory=dict)
    messages: list[tuple[str, str, str, str, int, datetime]] = field(default_factory=list)
    pending_order_at: datetime | None = None
    ended: list[tuple[datetime, str, str | None, bool]] = field(default_factory=list)

    def newest_consents(self) -> dict[str, bool]:
        """The newest ledger entry per channel (ties: the later id, i.e. written later)."""
        newest: dict[str, bool] = {}
        for _, _, channel, granted in sorted(self.consents, reverse=True):
            newest.setdefault(channel, granted)
        return newest


def _read(
    session: Session,
    contact: Contact,
    addresses: dict[str, tuple[str | None, str | None]],
    *,
    shape: tuple[bool, bool, bool],
    **params: Any,
) -> _Rows:
    values: dict[str, Any] = {"sid": contact.store_id, "cid": contact.id, **params}
    for channel in _SUPPRESSIBLE:
        values[f"a_{channel}"] = addresses[channel][0]
    statement = _facts_statement(*shape)
    # straight on the connection (the ORM execution path costs more than this read),
    # unless there are unflushed changes this read must see: then with autoflush
    pending = session.new or session.dirty or session.deleted
    found = (session if pending else session.connection()).execute(statement, values)
    out = _Rows()
    for k, channel, ref, ref2, txt, num, at in found:
        if k == "m":
            out.messages.append((ref, ref2, channel, txt, num, at))
        elif k == "c":
            out.consents.append((at, ref, channel, bool(num)))
        elif k == "s":
            out.suppressed[channel] = txt
        elif k == "o":
            out.pending_order_at = at
        else:
            out.ended.append((at, ref, txt, bool(num)))
    return out


def _channel_states(
    addresses: dict[str, tuple[str | None, str | None]], rows: _Rows
) -> dict[str, ChannelState]:
    consents = rows.newest_consents()
    return {
        name: ChannelState(
            address=address,
            unreachable=why,
            consent=consents.get(name),
            suppressed=rows.suppressed.get(name),
        )
        for name, (address, why) in addresses.items()
    }


def _reach(
    contact: Contact,
    settings: StoreSettings,
    phone: PhoneResult | None,
    push: list[PushSubscription],
    channels: dict[str, ChannelState],
) -> Reach:
    phone_e164 = phone.e164 if phone else None
    return Reach(
        channels=channels,
        timezone=contact.timezone or _phone_zone(phone_e164) or settings.timezone,
        country=contact.country or (phone.country if phone else None) or settings.country,
        push=push,
    )


def reach(session: Session, contact: Contact, settings: StoreSettings) -> Reach:
    """Each channel's address (or why there is none), consent and suppression."""
    phone = _phone(contact, settings)
    push = _push_subscriptions(session, contact, settings)
    addresses = _addresses(contact, settings, phone, push)
    rows = _read(session, contact, addresses, shape=(False, False, False))
    return _reach(contact, settings, phone, push, _channel_states(addresses, rows))


def step_facts(
    session: Session,
    *,
    enrollment: Enrollment,
    cart: Cart,
    contact: Contact,
    settings: StoreSettings,
    step_index: int,
    channels: Collection[str],
    now: datetime,
) -> StepFacts:
    """Everything the policy needs for step ``step_index`` of this enrollment.

    ``channels`` are the step's channels: the ended journeys (sunset) are read only when
    email is among them, and the pending order only when the policy has a window for it.
    """
    policy = settings.policy
    phone = _phone(contact, settings)
    push = _push_subscriptions(session, contact, settings)
    addresses = _addresses(contact, settings, phone, push)
    orders = policy.pending_order is not None
    sunset = policy.sunset_after > 0 and "email" in channels
    rows = _read(
        session,
        contact,
        addresses,
        shape=(True, orders, sunset),
        eid=enrollment.id,
        since=now - policy.gap,
        cart=cart.id,
        sunset=policy.sunset_after,
    )
    found = _reach(contact, settings, phone, push, _channel_states(addresses, rows))
    mine_ids: list[str] = []
    journey = journey_sms = 0
    previous_sent = False
    last: datetime | None = None
    for message_id, enrollment_id, channel, status, index, created_at in rows.messages:
        reached = status in REACHED
        if enrollment_id == enrollment.id and index == step_index:
            mine_ids.append(message_id)
            continue
        if reached and (last is None or created_at > last):
            last = created_at
        if enrollment_id != enrollment.id or not reached:
            continue
        journey += 1
        journey_sms += channel == "sms"
        previous_sent = previous_sent or index == step_index - 1
    mine = _messages(session, mine_ids)
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
        pending_order_at=rows.pending_order_at,
        ignored_journeys=_ignored(contact, rows.ended) if sunset else 0,
    )
    tried = frozenset(ch for ch, m in mine.items() if m.status in FAILED)
    return StepFacts(facts, found, previous_sent, tried, mine)


def _messages(session: Session, ids: list[str]) -> dict[str, Message]:
    """This step's messages as objects (a retry or a fallback; none on a first run)."""
    if not ids:
        return {}
    found = session.execute(select(Message).where(Message.id.in_(ids))).scalars()
    return {message.channel: message for message in found}


def _ignored(contact: Contact, ended: Iterable[tuple[datetime, str, str | None, bool]]) -> int:
    """How many of the contact's newest ended journeys, in a row, got no open, no click
    and no order (a journey that ended by a purchase was not ignored)."""
    count = 0
    for started_at, _, exit_reason, engaged in sorted(ended, key=lambda row: row[0], reverse=True):
        engaged_since = (
            contact.last_engaged_at is not None and contact.last_engaged_at >= started_at
        )
        if exit_reason == "purchased" or engaged or engaged_since:
            break
        count += 1
    return count


__all__ = ["CHANNELS", "REACHED", "Reach", "StepFacts", "reach", "step_facts"]
