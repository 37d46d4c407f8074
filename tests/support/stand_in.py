"""A provider stood in for by a real HTTP server on loopback, answering as a test says.

Tests of channel adapters (Twilio, Telegram, WhatsApp, webhooks) use the ``serve``
fixture from tests/conftest.py: ``stand_in = serve(answer)`` where ``answer`` turns each
received request into a :class:`Reply`; ``stand_in.received`` is what arrived, byte for
byte."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay: float = 0.0  # seconds to hold the answer (or until the test ends)


Answer = Callable[[Received], Reply]


@dataclass
class StandIn:
    answer: Answer
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    url: str = ""


Serve = Callable[..., StandIn]


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = Received(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            stand_in.received.append(request)
            reply = stand_in.answer(request)
            if reply.delay:
                stand_in.released.wait(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout scenarios)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@contextmanager
def stand_ins() -> Iterator[Serve]:
    """Start stand-ins on demand (``serve(answer, path="/hooks")``); stop them all after."""
    servers: list[tuple[ThreadingHTTPServer, StandIn]] = []

    def start(answer: Answer, path: str = "") -> StandIn:
        stand_in = StandIn(answer)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
        stand_in.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append((server, stand_in))
        return stand_in

    try:
        yield start
    finally:
        for server, stand_in in servers:
            stand_in.released.set()
            server.shutdown()
            server.server_close()
