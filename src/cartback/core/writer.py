"""Group commit: many requests share one transaction and one durable commit.

A request hands a unit of work to :class:`GroupCommitWriter` and waits for its future.
The writer thread takes every unit waiting, runs each inside its own SAVEPOINT (so one
bad unit rolls back alone), commits once, and only then resolves the futures — so a 2xx
still means "committed". Committing per request costs 1.7-2.9x in throughput here
(see shared/performance.md, B2).

Async callers use :meth:`GroupCommitWriter.run` / :meth:`~GroupCommitWriter.run_batch`:
the writer answers all of a group's waiters on one event loop with a single
``call_soon_threadsafe``. ``asyncio.wrap_future`` per request wakes the loop once per
request instead (a done-callback, a self-pipe write and a loop turn each): ~10 us of CPU
per request against ~1.6 us, in groups of 32 on the reference box.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
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

# How long the writer keeps its connection with nothing to write.
HOLD_IDLE = 1.0

# Units per transaction. Large enough to amortize the commit (fsync), small enough that
# one transaction stays in the tens of milliseconds.
MAX_GROUP = 256


@dataclass
class _Unit(Generic[T]):
    fn: Callable[[Session], T] | None
    handler: Any = None  # a BatchHandler, for units made by submit_batch
    item: Any = None
    # exactly one of the two: a thread's future, or a coroutine's waiter on its loop
    future: Future[T] | None = None
    waiter: asyncio.Future[T] | None = None


_Answer = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(answers: list[_Answer]) -> None:
    """On the waiters' loop: hand each its result (a cancelled waiter has gone)."""
    for waiter, value, error in answers:
        if waiter.done():
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(value)


class WriterStopped(RuntimeError):
    pass


class GroupCommitWriter:
    def __init__(self, factory: sessionmaker[Session], *, name: str = "cartback-writer") -> None:
        self._factory = factory
        self._queue: queue.SimpleQueue[_Unit[Any] | None] = queue.SimpleQueue()
        self._stopped = False
        self._held: Connection | None = None  # kept between back-to-back groups
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        future: Future[T] = Future()
        self._put(_Unit(fn, future=future))
        return future

    def submit_batch(self, handler: BatchHandler[ItemT, R], item: ItemT) -> Future[R]:
        """Like :meth:`submit`, but every waiting item of the same ``handler`` is handed
        to it together, so it can write the whole group with a few set-based statements."""
        future: Future[R] = Future()
        self._put(_Unit(None, handler=handler, item=item, future=future))
        return future

    async def run(self, fn: Callable[[Session], T]) -> T:
        """:meth:`submit` for a coroutine on an event loop: the result after the commit."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._put(_Unit(fn, waiter=waiter))
        return await waiter

    async def run_batch(self, handler: BatchHandler[ItemT, R], item: ItemT) -> R:
        """:meth:`submit_batch` for a coroutine on an event loop."""
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._put(_Unit(None, handler=handler, item=item, waiter=waiter))
        return await waiter

    def _put(self, unit: _Unit[Any]) -> None:
        if self._stopped:
            raise WriterStopped("the writer is stopped")
        self._queue.put(unit)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _take(self) -> tuple[list[_Unit[Any]], bool]:
        try:
            first = self._queue.get(timeout=HOLD_IDLE)
        except queue.Empty:
            self._release()  # a quiet spell: the connection goes back to the pool
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
        try:
            while True:
                units, stop = self._take()
                if units:
                    self._commit_group(units)
                if stop:
                    return
        finally:
            self._release()

    def _session(self) -> Session:
        """A session on the connection this thread keeps while units keep coming.

        Checking a connection out of the pool for every group costs a round trip on
        PostgreSQL (``pool_pre_ping``) and pool bookkeeping on both backends; groups that
        follow each other reuse one instead. After ``HOLD_IDLE`` without work it goes back
        to the pool, to be pinged on its next checkout: the ping is there for connections
        that sat idle while the server restarted or a firewall dropped them.
        """
        engine = self._factory.kw.get("bind")
        if not isinstance(engine, Engine):
            return self._factory()
        if self._held is not None and self._held.invalidated:
            self._release()
        if self._held is None:
            self._held = engine.connect()
        return self._factory(bind=self._held)

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def _commit_group(self, units: list[_Unit[Any]]) -> None:
        for attempt in range(1, RETRIES + 1):
            session = self._session()
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
                self._answer([(unit, None, exc) for unit in units])
                return
            finally:
                session.close()
            WRITER_GROUP.observe(len(units))
            self._answer(results)
            return

    @staticmethod
    def _answer(results: list[tuple[_Unit[Any], Any, BaseException | None]]) -> None:
        """Resolve the futures; waiters on an event loop get one wake-up per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for unit, value, error in results:
            if unit.waiter is not None:
                by_loop.setdefault(unit.waiter.get_loop(), []).append((unit.waiter, value, error))
            elif unit.future is not None and error is not None:
                unit.future.set_exception(error)
            elif unit.future is not None:
                unit.future.set_result(value)
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                log.warning("writer.loop_closed", extra={"units": len(answers)})

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
