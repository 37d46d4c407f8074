"""A per-key circuit breaker, so one store's failing mail server never holds up another's sends.

After ``failure_threshold`` transient failures in a row for a key, the circuit for that key opens
for ``cooldown``; while it is open :meth:`CircuitBreaker.check` raises at once, without touching
the network. When the cool-down has passed the next send is let through as a trial: success
closes the circuit, another failure opens it for a new cool-down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cartback.channels.base import TransientSendError
from cartback.core.clock import Clock


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: datetime | None = None


class CircuitBreaker:
    """Thread-safe; one instance may guard many keys (e.g. one per SMTP URL without password)."""

    def __init__(
        self,
        clock: Clock,
        *,
        cooldown: timedelta = timedelta(seconds=30),
        failure_threshold: int = 1,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._clock = clock
        self._cooldown = cooldown
        self._threshold = failure_threshold
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Raise TransientSendError (``circuit.open``) while the circuit for ``key`` is open."""
        with self._lock:
            state = self._states.get(key)
            open_until = state.open_until if state else None
        if open_until is None:
            return
        remaining = (open_until - self._clock.now()).total_seconds()
        if remaining > 0:
            raise TransientSendError("circuit.open", "circuit open", retry_after=remaining)

    def is_open(self, key: str) -> bool:
        try:
            self.check(key)
        except TransientSendError:
            return True
        return False

    def record_failure(self, key: str) -> None:
        with self._lock:
            state = self._states.setdefault(key, _State())
            state.failures += 1
            if state.failures >= self._threshold:
                state.open_until = self._clock.now() + self._cooldown

    def record_success(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)
