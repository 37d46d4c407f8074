"""Before the write: the store a public key names, its origins, and a request turned into
our event models (:class:`Visit`), refused with a 4xx when it cannot be.

Each snippet event that changes a cart or a contact becomes one of the event models of
``POST /v1/events`` (ids ``snippet:<client id>``, so a public key can never take the id of
a server event), applied by the same rules (:mod:`cartback.collect.visitors`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.collect import bots
from cartback.collect.schemas import (
    Capture,
    CollectBody,
    CollectEvent,
    SnippetCartUpdated,
    SnippetCheckoutStarted,
    SnippetContactCaptured,
    SnippetPromptSubmitted,
)
from cartback.errors import Unauthorized, Unprocessable
from cartback.ingest import schemas as ingest
from cartback.stores.models import Store
from cartback.stores.schemas import SnippetSettings, StoreSettings
from cartback.stores.service import API_KEY_PREFIX, PUBLIC_KEY_PREFIX, store_settings

log = logging.getLogger("cartback.collect")

EVENT_PREFIX = "snippet:"
# A browser clock this far from ours is wrong, not slow: its batch is re-anchored on our
# clock (docs/snippet-protocol.md, "Times").
CLOCK_TOLERANCE = timedelta(minutes=2)
# No snippet event is older than this: a batch is sent as the shopper browses.
MAX_EVENT_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class SnippetStore:
    """The store a public key names, as the edge needs it."""

    id: str
    name: str
    settings: StoreSettings


def find_store(session: Session, key: str | None) -> SnippetStore:
    """The store whose public key this is; 401 for anything else (never the secret key)."""
    if not key:
        raise Unauthorized(
            'Send the store\'s public key as "key" (cb_pk_...)', code="missing_public_key"
        )
    if key.startswith(API_KEY_PREFIX):
        log.warning("collect.secret_key_refused")  # the key itself is never logged
        raise Unauthorized(
            "This is the store's secret API key: it must never be in a page. Revoke it and "
            "use the store's public key (cb_pk_...) in the snippet",
            code="secret_key_not_allowed",
        )
    store = None
    if key.startswith(PUBLIC_KEY_PREFIX):
        store = session.execute(select(Store).where(Store.public_key == key)).scalar_one_or_none()
    if store is None:
        raise Unauthorized("The public key is not valid", code="invalid_public_key")
    return SnippetStore(store.id, store.name, store_settings(store))


# --- CORS -------------------------------------------------------------------------------------


def allowed_origins(settings: StoreSettings) -> frozenset[str]:
    """``snippet.origins``; when empty, the origin of the store's ``url``."""
    if settings.snippet.origins:
        return frozenset(settings.snippet.origins)
    parts = urlsplit(settings.url)
    return frozenset({f"{parts.scheme}://{parts.netloc}".lower()})


def every_origin(session: Session) -> frozenset[str]:
    """The origins any store allows: for a preflight that names no store (few stores per
    instance; the edge caches this)."""
    found: set[str] = set()
    for (raw,) in session.execute(select(Store.settings)):
        try:
            found |= allowed_origins(StoreSettings.model_validate(raw))
        except ValidationError:
            continue
    return frozenset(found)


# --- before the write: times, consent, our event models ----------------------------------------


def server_times(events: Sequence[CollectEvent], now: datetime) -> list[datetime]:
    """Each event's time on our clock.

    A browser whose newest event is within two minutes of our clock keeps its times
    (capped at now). Otherwise its clock is wrong: the newest event is taken as sent now
    and the others keep their distance to it. Nothing is older than 24 hours.
    """
    newest = max(event.at for event in events)
    if abs(newest - now) <= CLOCK_TOLERANCE:
        return [max(min(event.at, now), now - MAX_EVENT_AGE) for event in events]
    return [now - min(newest - event.at, MAX_EVENT_AGE) for event in events]


def refuse_without_consent(body: CollectBody, snippet: SnippetSettings) -> None:
    """EU mode takes an email or phone only with an answer for its channel's consent (true,
    or false: a withdrawal); a price watch always needs consent true for the channel its
    alert goes to. 422 naming ``consent``."""
    errors: list[dict[str, str]] = []
    for i, event in enumerate(body.events):
        if not isinstance(event, Capture):
            continue
        channels = event.channels()
        if snippet.consent_mode == "eu":
            errors += [
                {
                    "field": f"events[{i}].consent.{channel}",
                    "message": f"this store asks for consent first (EU mode): a captured "
                    f"{'email' if channel == 'email' else 'phone'} is kept only with "
                    f"consent.{channel} true",
                }
                for channel in channels
                if event.consented(channel) is None
            ]
        watch = isinstance(event, SnippetPromptSubmitted) and event.offer == "price_watch"
        if watch and not any(event.consented(channel) for channel in channels):
            errors.append(
                {
                    "field": f"events[{i}].consent",
                    "message": "a price watch needs consent true for the email or phone its "
                    "alert goes to",
                }
            )
    if errors:
        raise Unprocessable(
            f"{errors[0]['field']}: {errors[0]['message']}", code="consent_required", errors=errors
        )


@dataclass(frozen=True)
class Step:
    """One snippet event, its time on our clock, and the event model it is applied as."""

    event: CollectEvent
    at: datetime
    applied_as: ingest.EventIn | None


@dataclass(frozen=True)
class Visit:
    """One request's events from one visitor, ready for the writer."""

    store: SnippetStore
    visitor_id: str
    steps: list[Step]
    junk: str | None  # what the request says about itself (bots.request_junk)
    now: datetime


def plan(
    body: CollectBody,
    *,
    store: SnippetStore,
    now: datetime,
    ip: str | None,
    user_agent: str | None,
) -> Visit:
    """The request as our event models; 422 naming the field if one cannot be made."""
    times = server_times(body.events, now)
    proof = {"ip": (ip or "")[:64] or None, "user_agent": _clean(user_agent, 500)}
    steps: list[Step] = []
    errors: list[dict[str, str]] = []
    for i, (event, at) in enumerate(zip(body.events, times, strict=True)):
        try:
            applied = _as_ingest(event, at, body.visitor, store.settings.snippet, proof)
        except ValidationError as exc:
            errors += [
                {"field": f"events[{i}]." + ".".join(map(str, e["loc"])), "message": e["msg"]}
                for e in exc.errors(include_url=False)
            ]
            continue
        steps.append(Step(event, at, applied))
    if errors:
        raise Unprocessable(
            f"{errors[0]['field']}: {errors[0]['message']}", code="invalid_event", errors=errors
        )
    junk = bots.request_junk(user_agent, webdriver=body.webdriver)
    return Visit(store=store, visitor_id=body.visitor, steps=steps, junk=junk, now=now)


def _clean(text: str | None, limit: int) -> str | None:
    return text.replace("\x00", "")[:limit] if text else None


def default_cart_id(visitor_id: str) -> str:
    return f"v:{visitor_id}"


def _as_ingest(
    event: CollectEvent,
    at: datetime,
    visitor_id: str,
    snippet: SnippetSettings,
    proof: dict[str, str | None],
) -> ingest.EventIn | None:
    base: dict[str, Any] = {"id": EVENT_PREFIX + event.id, "occurred_at": at}
    if isinstance(event, SnippetCartUpdated):
        cart = event.cart.model_dump(mode="json", exclude_none=True)
        cart["id"] = event.cart.id or default_cart_id(visitor_id)
        return ingest.CartUpdated.model_validate({**base, "type": "cart.updated", "cart": cart})
    if isinstance(event, SnippetCheckoutStarted):
        cart_id = event.cart.id or default_cart_id(visitor_id)
        return ingest.CheckoutStarted.model_validate(
            {**base, "type": "checkout.started", "cart": {"id": cart_id}}
        )
    if isinstance(event, SnippetContactCaptured | SnippetPromptSubmitted):
        source = event.source if isinstance(event, SnippetContactCaptured) else "prompt"
        channels = event.channels()
        consent = {c: event.consented(c) for c in channels if event.consented(c) is not None}
        contact = {
            "email": event.email,
            "phone": event.phone,
            "consent": consent or None,
            "consent_source": f"snippet_{source}",
            "consent_proof": {
                **proof,
                "text": event.consent_text or snippet.capture.consent_text,
            },
        }
        return ingest.ContactIdentified.model_validate(
            {**base, "type": "contact.identified", "contact": contact}
        )
    return None
