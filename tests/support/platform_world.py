"""What the platform webhook tests share: the README's worked example of the generic
webhook, a store connected to every platform, and one view of every row a webhook may
write, to assert that a forgery, a replay or a stale retry changed nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from cartback.app import Runtime
from cartback.carts.models import Cart, Order, TimelineEntry
from cartback.contacts.models import Consent, Contact
from cartback.core.clock import ManualClock
from cartback.ingest.models import Event
from support.factories import StoreKeys, make_store
from support.platform_samples import SHOPIFY_SECRET, WOO_SECRET

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_platforms() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The README's generic webhook example: its settings (the ``# generic.yaml`` block)
    and the JSON payloads shown, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Platforms") : text.index("## Production")]
    blocks = re.findall(r"```(yaml|json)\n(.*?)```", section, flags=re.DOTALL)
    [settings] = [yaml.safe_load(b) for kind, b in blocks if b.startswith("# generic.yaml")]
    payloads = [json.loads(b) for kind, b in blocks if kind == "json"]
    return settings, payloads


def generic_settings() -> dict[str, Any]:
    """The README's ``platforms.generic``, exactly as documented."""
    settings, _ = readme_platforms()
    generic: dict[str, Any] = settings["platforms"]["generic"]
    return generic


def connected_store(runtime: Runtime, clock: ManualClock, name: str = "Acme Shoes") -> StoreKeys:
    return make_store(
        runtime,
        clock,
        name=name,
        platforms={
            "shopify": {"webhook_secret": SHOPIFY_SECRET},
            "woocommerce": {"webhook_secret": WOO_SECRET},
            "generic": generic_settings(),
        },
    )


def state(runtime: Runtime) -> dict[str, Any]:
    """Every row a webhook may write, in a comparable form."""
    with runtime.sessions() as s:
        return {
            "events": sorted((e.store_id, e.event_id, e.type) for e in s.scalars(select(Event))),
            "carts": sorted(
                (c.external_id, c.status, c.value, c.snapshot_at) for c in s.scalars(select(Cart))
            ),
            "orders": sorted((o.external_id, o.cart_id, o.total) for o in s.scalars(select(Order))),
            "contacts": sorted(
                (c.email, c.phone, c.external_id, c.first_name) for c in s.scalars(select(Contact))
            ),
            "consents": sorted(
                (c.channel, c.granted, c.source) for c in s.scalars(select(Consent))
            ),
            "timeline": s.execute(select(func.count()).select_from(TimelineEntry)).scalar_one(),
        }


EMPTY = {"events": [], "carts": [], "orders": [], "contacts": [], "consents": [], "timeline": 0}


def cart(runtime: Runtime, store: StoreKeys, external_id: str) -> Cart:
    with runtime.sessions() as s:
        found = s.execute(
            select(Cart).where(Cart.store_id == store.id, Cart.external_id == external_id)
        ).scalar_one()
        s.expunge(found)
        return found


def order(runtime: Runtime, store: StoreKeys, external_id: str) -> Order:
    with runtime.sessions() as s:
        found = s.execute(
            select(Order).where(Order.store_id == store.id, Order.external_id == external_id)
        ).scalar_one()
        s.expunge(found)
        return found


def contact(runtime: Runtime, store: StoreKeys, email: str) -> Contact:
    with runtime.sessions() as s:
        found = s.execute(
            select(Contact).where(Contact.store_id == store.id, Contact.email == email)
        ).scalar_one()
        s.expunge(found)
        return found


def consents(runtime: Runtime) -> list[tuple[str, bool, str]]:
    with runtime.sessions() as s:
        return sorted((c.channel, c.granted, c.source) for c in s.scalars(select(Consent)))
