"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, parsed."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Handler:
    received: list[EmailMessage] = field(default_factory=list)
    reply: str | None = None  # e.g. "451 4.3.0 try later" to refuse
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event | None = None  # while set and not released, DATA gets no answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        while self.held is not None and not self.held.is_set():
            await asyncio.sleep(0.01)  # a server that has gone quiet mid-conversation
        if self.reply:
            return self.reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(parsed)
        return "250 OK"


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.received)

    def refuse(self, reply: str | None) -> None:
        self.handler.reply = reply

    def hang(self) -> threading.Event:
        """Stop answering DATA until the returned event is set."""
        self.handler.held = threading.Event()
        return self.handler.held

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
