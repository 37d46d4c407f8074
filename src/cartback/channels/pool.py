"""A small pool of channels to one server, so several worker threads send at once.

Each :class:`~cartback.channels.smtp.SmtpChannel` holds one persistent connection; the
pool lends one per send. Eight connections reached the best client throughput against a
C sink here (performance.md, B6: 1,690 msgs/s; 32 connections gave no more).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from cartback.channels.base import EmailChannel, OutgoingEmail, SendResult

__all__ = ["ChannelPool"]


class ChannelPool:
    """An EmailChannel that lends one of at most ``size`` channels made by ``factory``."""

    def __init__(self, factory: Callable[[], EmailChannel], *, size: int = 8) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one channel")
        self._factory = factory
        self._size = size
        self._idle: queue.LifoQueue[EmailChannel] = queue.LifoQueue()
        self._made: list[EmailChannel] = []
        self._lock = threading.Lock()
        self.name = "pool"

    def _borrow(self) -> EmailChannel:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if len(self._made) < self._size:
                channel = self._factory()
                self._made.append(channel)
                self.name = channel.name
                return channel
        return self._idle.get()  # all are busy: wait for one to come back

    def send(self, email: OutgoingEmail) -> SendResult:
        channel = self._borrow()
        try:
            return channel.send(email)
        finally:
            self._idle.put(channel)

    def close(self) -> None:
        with self._lock:
            for channel in self._made:
                channel.close()
            self._made.clear()
