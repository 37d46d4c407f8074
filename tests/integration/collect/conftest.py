"""The snippet tests' stores (one that allows https://acme.test, one in EU consent mode)
and browsers on them (see support/snippet.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.factories import StoreKeys, make_store
from support.snippet import ORIGIN, Browser


@pytest.fixture
def shop(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return make_store(runtime, clock, snippet={"origins": [ORIGIN]})


@pytest.fixture
def eu_shop(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return make_store(
        runtime,
        clock,
        name="Acme EU",
        snippet={
            "origins": [ORIGIN],
            "consent_mode": "eu",
            "capture": {"consent_checkbox": "#consent", "consent_text": "Email me my cart."},
        },
    )


@pytest.fixture
def browser(client: TestClient, shop: StoreKeys, clock: ManualClock) -> Browser:
    return Browser(client, shop, clock)


@pytest.fixture
def new_browser(client: TestClient, shop: StoreKeys, clock: ManualClock) -> Callable[..., Browser]:
    """``new_browser(store=..., origin=..., user_agent=...)``: another shopper's browser."""
    return lambda **kw: Browser(client, kw.pop("store", shop), clock, **kw)
