"""The stores every callback test posts to: one with every channel set up for callbacks,
one with none (see support/callback_world.py)."""

from __future__ import annotations

import pytest

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.callback_world import callback_store
from support.factories import StoreKeys, make_store


@pytest.fixture
def shop(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return callback_store(runtime, clock)


@pytest.fixture
def bare(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    """A store with no channel set up for callbacks."""
    return make_store(runtime, clock, name="Bare Store")
