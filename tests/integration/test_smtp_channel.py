"""SmtpChannel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from cartback.channels import (
    CircuitBreaker,
    OutgoingEmail,
    PermanentSendError,
    SmtpChannel,
    TransientSendError,
)
from cartback.core.clock import ManualClock

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Sink:
    """An aiosmtpd handler that records what it receives and can refuse on demand."""

    rcpt_reply: str | None = None
    data_reply: str | None = None
    ehlo_count: int = 0
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlo_count += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_sink(port: int) -> tuple[Controller, Sink]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, sink


@pytest.fixture
def server() -> Iterator[tuple[int, Sink]]:
    port = free_port()
    controller, sink = start_sink(port)
    yield port, sink
    controller.stop()


def outgoing(message_id: str = "c0ffee01", to_address: str = "ana@example.org") -> OutgoingEmail:
    return OutgoingEmail(
        message_id=message_id,
        from_address="shop@example.com",
        from_name="Пример «Магазин»",
        to_address=to_address,
        to_name="Ana",
        subject="Вы кое-что забыли в корзине",
        text="Return to your cart: https://example.com/r/abc\n",
        html="<p>Return to <a href='https://example.com/r/abc'>your cart</a></p>",
        headers=(
            ("List-Unsubscribe", "<https://example.com/u/tok123>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def channel_for(port: int, **kwargs: Any) -> SmtpChannel:
    return SmtpChannel(f"smtp://127.0.0.1:{port}?timeout=5", clock=ManualClock(NOW), **kwargs)


def test_delivers_a_message_with_both_parts_and_unsubscribe_headers(
    server: tuple[int, Sink],
) -> None:
    port, sink = server
    channel = channel_for(port)

    result = channel.send(outgoing())
    channel.close()

    assert (result.provider, result.provider_message_id) == ("smtp", "<c0ffee01@example.com>")
    ((mail_from, rcpt_tos, content),) = sink.received
    assert (mail_from, rcpt_tos) == ("shop@example.com", ["ana@example.org"])
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Вы кое-что забыли в корзине"
    assert message["From"].addresses[0].display_name == "Пример «Магазин»"
    assert message["Message-ID"] == "<c0ffee01@example.com>"
    assert message["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert message["List-Unsubscribe"] == "<https://example.com/u/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = message.iter_parts()
    assert text.get_content() == "Return to your cart: https://example.com/r/abc\r\n"
    assert html.get_content() == (
        "<p>Return to <a href='https://example.com/r/abc'>your cart</a></p>"
    )


def test_two_sends_reuse_one_connection(server: tuple[int, Sink]) -> None:
    port, sink = server
    channel = channel_for(port)

    channel.send(outgoing("m1"))
    channel.send(outgoing("m2"))
    channel.close()

    assert sink.ehlo_count == 1
    assert len(sink.received) == 2


def test_a_5xx_reply_is_permanent_with_the_server_text(server: tuple[int, Sink]) -> None:
    port, sink = server
    sink.rcpt_reply = "550 5.1.1 no such user"
    channel = channel_for(port)

    with pytest.raises(PermanentSendError) as raised:
        channel.send(outgoing(to_address="nobody@example.org"))

    assert raised.value.code == "smtp.550"
    assert raised.value.reason == "5.1.1 no such user"
    assert sink.received == []
    sink.rcpt_reply = None
    channel.send(outgoing("m2"))  # the connection is still usable after RSET
    channel.close()
    assert sink.ehlo_count == 1
    assert len(sink.received) == 1


def test_a_4xx_reply_is_transient(server: tuple[int, Sink]) -> None:
    port, sink = server
    sink.data_reply = "451 4.3.0 try later"
    channel = channel_for(port)

    with pytest.raises(TransientSendError) as raised:
        channel.send(outgoing())
    channel.close()

    assert raised.value.code == "smtp.451"
    assert raised.value.reason == "4.3.0 try later"
    assert sink.received == []


def test_a_closed_port_is_transient() -> None:
    channel = channel_for(free_port())

    with pytest.raises(TransientSendError) as raised:
        channel.send(outgoing())

    assert raised.value.code == "smtp.connect"


def test_reconnects_once_when_the_server_dropped_the_connection() -> None:
    port = free_port()
    controller, first = start_sink(port)
    channel = channel_for(port)
    channel.send(outgoing("m1"))
    controller.stop()  # the server goes away, taking our idle connection with it
    controller, second = start_sink(port)
    try:
        channel.send(outgoing("m2"))
        channel.close()
    finally:
        controller.stop()

    assert [len(first.received), len(second.received)] == [1, 1]
    assert second.ehlo_count == 1


def test_an_open_circuit_fails_fast_without_touching_the_network() -> None:
    port = free_port()
    clock = ManualClock(NOW)
    breaker = CircuitBreaker(clock, cooldown=timedelta(seconds=30))
    channel = SmtpChannel(f"smtp://127.0.0.1:{port}?timeout=5", clock=clock, breaker=breaker)
    with pytest.raises(TransientSendError) as first:
        channel.send(outgoing("m1"))
    controller, sink = start_sink(port)  # the server comes back during the cool-down
    try:
        with pytest.raises(TransientSendError) as second:
            channel.send(outgoing("m2"))
        assert sink.ehlo_count == 0
        clock.advance(timedelta(seconds=30))
        channel.send(outgoing("m3"))
        channel.close()
    finally:
        controller.stop()

    assert first.value.code == "smtp.connect"
    assert (second.value.code, second.value.retry_after) == ("circuit.open", 30.0)
    assert channel.key == f"smtp://127.0.0.1:{port}"
    assert sink.ehlo_count == 1
    assert len(sink.received) == 1


def test_the_breaker_key_leaves_out_the_password() -> None:
    channel = SmtpChannel("smtp://shop:s3cret@mail.example.com?starttls=1")

    assert channel.key == "smtp://shop@mail.example.com:587?starttls=1"
    assert "s3cret" not in channel.key
