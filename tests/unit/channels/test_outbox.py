from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cartback.channels import OutboxChannel, OutgoingEmail, PermanentSendError
from cartback.core.clock import ManualClock

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def outgoing(message_id: str, subject: str = "Did you forget something?") -> OutgoingEmail:
    return OutgoingEmail(
        message_id=message_id,
        from_address="shop@example.com",
        from_name="Example Shop",
        to_address="ana@example.org",
        to_name="Ana",
        subject=subject,
        text="Return to your cart: https://example.com/r/abc",
        html="<p>Return to your cart</p>",
        headers=(("List-Unsubscribe", "<https://example.com/u/tok>"),),
    )


def test_captures_in_memory_newest_first() -> None:
    clock = ManualClock(START)
    outbox = OutboxChannel(clock=clock)

    first = outbox.send(outgoing("m1"))
    clock.advance(timedelta(minutes=1))
    outbox.send(outgoing("m2", subject="Пора вернуться"))

    assert (first.provider, first.provider_message_id) == ("outbox", "<m1@example.com>")
    assert [c.message_id for c in outbox.list()] == ["m2", "m1"]
    captured = outbox.get("m2")
    assert captured is not None
    assert (captured.to_address, captured.subject) == ("ana@example.org", "Пора вернуться")
    assert captured.captured_at == START + timedelta(minutes=1)
    parsed = email.message_from_bytes(captured.mime, policy=email.policy.default)
    assert parsed["Message-ID"] == "<m2@example.com>"
    assert outbox.get("missing") is None


def test_keeps_only_the_newest_maxlen() -> None:
    outbox = OutboxChannel(maxlen=2, clock=ManualClock(START))

    for n in range(3):
        outbox.send(outgoing(f"m{n}"))

    assert [c.message_id for c in outbox.list()] == ["m2", "m1"]


def test_writes_eml_files_and_loads_them_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(START)
    outbox = OutboxChannel(tmp_path, clock=clock)
    outbox.send(outgoing("m1", subject="Ваша корзина ждёт"))
    clock.advance(timedelta(hours=1))
    outbox.send(outgoing("m2"))

    restarted = OutboxChannel(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.eml", "m2.eml"]
    assert [c.message_id for c in restarted.list()] == ["m2", "m1"]
    old = restarted.get("m1")
    assert old is not None
    assert old.subject == "Ваша корзина ждёт"
    assert old.to_address == "ana@example.org"
    assert old.captured_at == START
    assert old.mime == (tmp_path / "m1.eml").read_bytes()


def test_refuses_a_message_id_that_is_not_a_safe_file_name(tmp_path: Path) -> None:
    outbox = OutboxChannel(tmp_path)

    with pytest.raises(PermanentSendError):
        outbox.send(outgoing("../evil"))

    assert list(tmp_path.iterdir()) == []
    assert outbox.list() == []
