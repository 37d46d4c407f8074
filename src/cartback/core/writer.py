"""Group commit: many requests share one transaction and one durable commit.

A request hands a unit of work to :class:`GroupCommitWriter` and waits for its future.
The writer thread takes every unit waiting, runs each inside its own SAVEPOINT (so one
bad unit rolls back alone), commits once, and only then resolves the futures — so a 2xx
still means "committed". Committing per request costs 1.7-2.9x in throughput here
(see shared/performance.md, B2).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from cartback.core.db import is_transient
from cartback.core.metrics import WRITER_GROUP

T = TypeVar("T")
ItemT = TypeVar("ItemT")
R = TypeVar("R")
# Handles a whole group's items at once (set-based SQL); returns, per item and in order,
# its result or the exception that is that item's answer.
BatchHandler = Callable[[Session, list[ItemT]], list["R | Exception"]]
log = logging.getLogger("cartback.writer")

# Attempts at a group that meets a deadlock or serialization failure.
RETRIES = 3

# Units per transaction. Large enough to amortize the commit (fsync), small enough that
# one transaction stays in the tens of milliseconds.
MAX_GROUP = 256


@dataclass
class _Unit(Generic[T]):
    fn: Callable[[Session], T] | None
    future: Future[T] = field(default_factory=Future)
    handler: Any = None  # a BatchHandler, for units made by submit_batch
    item: Any = None


class WriterStopped(RuntimeError):
    pass


class GroupCommitWriter:
    def __init__(self, factory: sessionmaker[Session], *, name: str = "cartback-writer") -> None:
        self._factory = factory
        self._queue: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        if self._stopped:
            raise WriterStopped("the writer is stopped")
        unit: _Unit[T] = _Unit(fn)
        self._queue.put(unit)
        return unit.future

    def submit_batch(self, handler: BatchHandler[ItemT, R], item: ItemT) -> Future[R]:
        """Like :meth:`submit`, but every waiting item of the same ``handler`` is handed
        to it together, so it can write the whole group with a few set-based statements."""
        if self._stopped:
            raise WriterStopped("the writer is stopped")
        unit: _Unit[R] = _Unit(None, handler=handler, item=item)
        self._queue.put(unit)
        return unit.future

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _take(self) -> tuple[list[_Unit[Any]], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        units = [first]
        while len(units) < MAX_GROUP:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return units, True
            units.append(nxt)
        return units, False

    def _run(self) -> None:
        while True:
            units, stop = self._take()
            if units:
                self._commit_group(units)
            if stop:
                return

    def _commit_group(self, units: list[_Unit[Any]]) -> None:
        for attempt in range(1, RETRIES + 1):
            session = self._factory()
            try:
                results = self._run_group(session, units)
                session.commit()
            except Exception as exc:
                session.rollback()
                if is_transient(exc) and attempt < RETRIES:
                    # a deadlock or serialization failure: the database undid it all,
                    # so the whole group runs again
                    log.warning("writer.retry", extra={"attempt": attempt, "units": len(units)})
                    continue
                log.exception("writer.commit_failed")
                for unit in units:
                    unit.future.set_exception(exc)
                return
            finally:
                session.close()
            WRITER_GROUP.observe(len(units))
            for unit, value, error in results:
                if error is not None:
                    unit.future.set_exception(error)
                else:
                    unit.future.set_result(value)
            return

    def _run_group(
        self, session: Session, units: list[_Unit[Any]]
    ) -> list[tuple[_Unit[Any], Any, BaseException | None]]:
        results: list[tuple[_Unit[Any], Any, BaseException | None]] = []
        batches: dict[Any, list[_Unit[Any]]] = {}
        for unit in units:
            if unit.fn is None:
                batches.setdefault(unit.handler, []).append(unit)
                continue
            try:
                with session.begin_nested():
                    results.append((unit, unit.fn(session), None))
            except Exception as exc:  # one unit's failure is that unit's answer...
                if is_transient(exc):  # ...unless the database wants the group again
                    raise
                results.append((unit, None, exc))
        for handler, group in batches.items():
            answers = handler(session, [unit.item for unit in group])
            for unit, answer in zip(group, answers, strict=True):
                if isinstance(answer, Exception):
                    if is_transient(answer):
                        raise answer
                    results.append((unit, None, answer))
                else:
                    results.append((unit, answer, None))
        return results
