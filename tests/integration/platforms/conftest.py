"""The stores every platform webhook test posts to: one connected to Shopify, WooCommerce
and the generic webhook (see support/platform_world.py), one connected to none."""

from __future__ import annotations

import pytest

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.factories import StoreKeys, make_store
from support.platform_world import connected_store


@pytest.fixture
def shop(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return connected_store(runtime, clock)


@pytest.fixture
def bare(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    """A store no platform is connected to."""
    return make_store(runtime, clock, name="Bare Store")
