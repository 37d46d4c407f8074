"""The contract between the queue and the code that does the work.

A domain registers one :data:`Handler` per job kind. The worker calls it with a
fresh session and the :class:`ClaimedJob`; the handler does its work in that
session and returns ``None`` (done: the job row is deleted in the same
transaction) or a :class:`Reschedule` (run me again later, also in the same
transaction). Raising means "failed, retry with backoff".

A handler that must talk to a provider between two transactions (a send records
its intent and commits it before the call: ADR 0004) returns a :class:`Deliver`
instead of committing itself: the worker commits the work so far, makes the call
with no transaction open, and hands what it gave to ``then`` in a new
transaction; what ``then`` returns settles the job.

A handler registered with ``batched=True`` promises to do only database work in
the session it is given and never to commit: the worker then runs it with the
other batchable jobs of the same claim in one transaction, and settles them all
with one statement and one commit (a job that raises loses only its own work:
the batch then runs again with a SAVEPOINT per job). Its :class:`Deliver` calls
run at the same time, on the worker's threads, between that transaction and the
one their ``then`` share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ClaimedJob:
    """A job as the worker hands it to a handler.

    ``attempts`` counts this run (1 on the first). ``due_at`` is when the job
    was due before it was claimed (its run_at then), for lag metrics.
    """

    id: int
    store_id: str
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    due_at: datetime | None = None


@dataclass(frozen=True)
class Reschedule:
    """A handler's "not now, run me again at ``run_at``" (a deferral).

    ``reason`` is kept in the job's ``last_error`` so people can see why it
    waits. With ``count_attempt=False`` (quiet hours, a frequency cap) the run
    does not count towards ``max_attempts``; with ``True`` (a provider asked us
    to come back) it does, and the job fails once the attempts are used up.
    """

    run_at: datetime
    reason: str
    count_attempt: bool = False


@dataclass(frozen=True)
class Delivered:
    """What a :class:`Deliver` call gave: its return value, or the exception it raised."""

    value: Any = None
    error: Exception | None = None


@dataclass(frozen=True)
class Deliver:
    """A handler's "commit my work, make this call outside any transaction, then go on".

    ``call`` runs after the handler's work has committed, with no transaction open
    (a provider call: it may take seconds, and must never hold a lock). What it gave
    goes to ``then(session, delivered)`` in a new transaction of the same job; its
    result settles the job like a handler's, and another Deliver starts another round
    (a send that failed for good tries the step's next channel). ``then`` must only
    write to the database: after a failure it may run again, with the same
    ``delivered``, once the transaction it ran in was rolled back.
    """

    call: Callable[[], Any]
    then: Callable[[Session, Delivered], Reschedule | Deliver | None]


def deliver(call: Callable[[], Any]) -> Delivered:
    """Run a :class:`Deliver` call, keeping what it raised as its result."""
    try:
        return Delivered(value=call())
    except Exception as exc:  # the ``then`` decides what a failure means
        return Delivered(error=exc)


Handler = Callable[[Session, ClaimedJob], Reschedule | Deliver | None]


class Registry:
    """Handlers by job kind.

    >>> registry = Registry()
    >>> @registry.register("cart.check_abandoned")
    ... def check(session, job):
    ...     return None
    >>> registry.get("cart.check_abandoned") is check
    True
    """

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._batched: set[str] = set()

    @overload
    def register(self, kind: str, handler: Handler, *, batched: bool = False) -> Handler: ...

    @overload
    def register(
        self, kind: str, handler: None = None, *, batched: bool = False
    ) -> Callable[[Handler], Handler]: ...

    def register(
        self, kind: str, handler: Handler | None = None, *, batched: bool = False
    ) -> Handler | Callable[[Handler], Handler]:
        """Register ``handler`` for ``kind``; without a handler, return a decorator.

        ``batched=True``: the handler may share one transaction with the other
        batchable jobs of its claim (see the module docstring); it must not commit.
        """
        if handler is None:

            def decorator(func: Handler) -> Handler:
                self._add(kind, func, batched=batched)
                return func

            return decorator
        self._add(kind, handler, batched=batched)
        return handler

    def mark_batched(self, kind: str) -> None:
        """Declare the already registered ``kind`` batchable (for wiring done elsewhere)."""
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r} is registered")
        self._batched.add(kind)

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def is_batched(self, kind: str) -> bool:
        return kind in self._batched

    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def _add(self, kind: str, handler: Handler, *, batched: bool) -> None:
        if kind in self._handlers:
            # Two handlers for one kind is a wiring bug; fail at startup, not at 3 a.m.
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler
        if batched:
            self._batched.add(kind)
