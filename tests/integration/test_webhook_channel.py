"""WebhookAlert against a real HTTP server on loopback: signed JSON, Slack body, failures."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from cartback.channels import (
    ChannelError,
    PermanentSendError,
    SendOutcomeUnknown,
    TeamAlert,
    TransientSendError,
    WebhookAlert,
    verify_signature,
)
from cartback.core.clock import ManualClock
from support.stand_in import Received, Reply, Serve, StandIn

SECRET = "whsec_Sup3rS3cretValue-do-not-leak"
HOOK = "/hooks/cartback"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _alert(**overrides: object) -> TeamAlert:
    fields: dict[str, object] = {
        "alert_id": "alert_01HQ7Z",
        "kind": "cart_abandoned",
        "store_name": "Bäckerei <Müller> & Co",
        "cart_id": "cart_42",
        "cart_value": 12950,
        "currency": "EUR",
        "value_text": "€129.50",
        "items": (("Sourdough loaf", 2, "€12.00"), ("Stand mixer", 1, "€117.50")),
        "contact_name": "Ana Novak",
        "contact_email": "ana@example.com",
        "contact_phone": "+14155552345",
        "cart_url": "https://shop.example.com/cart/recover?token=abc",
        "occurred_at": datetime(2026, 1, 5, 10, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    }
    fields.update(overrides)
    return TeamAlert(**fields)  # type: ignore[arg-type]


def _ok(request: Received) -> Reply:
    return Reply(200, b"ok")


def _channel(
    stand_in: StandIn, http: httpx.Client, *, slack: bool = False, url: str | None = None
) -> WebhookAlert:
    return WebhookAlert(
        url or stand_in.url, SECRET, client=http, clock=ManualClock(NOW), slack=slack
    )


def _assert_signed(request: Received) -> None:
    headers = request.headers
    assert verify_signature(
        SECRET,
        headers["X-Cartback-Timestamp"],
        request.body,
        headers["X-Cartback-Signature"],
        now=NOW,
    )


# --- success --------------------------------------------------------------------------------


def test_posts_a_signed_json_alert(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)

    result = _channel(stand_in, http).send(_alert())

    assert (result.provider, result.provider_message_id) == ("webhook", "alert_01HQ7Z")
    [request] = stand_in.received
    assert (request.method, request.path) == ("POST", "/hooks/cartback")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Cartback-Event"] == "cart_abandoned"
    assert request.headers["X-Cartback-Delivery"] == "alert_01HQ7Z"
    assert request.headers["X-Cartback-Timestamp"] == str(int(NOW.timestamp()))
    assert request.headers["X-Cartback-Signature"].startswith("sha256=")
    assert len(request.headers["X-Cartback-Signature"]) == len("sha256=") + 64
    _assert_signed(request)

    body = json.loads(request.body)
    assert list(body) == [
        "event",
        "alert_id",
        "occurred_at",
        "store_name",
        "cart_id",
        "cart_value",
        "currency",
        "value_text",
        "items",
        "contact_name",
        "contact_email",
        "contact_phone",
        "cart_url",
    ]
    assert body == {
        "event": "cart_abandoned",
        "alert_id": "alert_01HQ7Z",
        "occurred_at": "2026-01-05T09:00:30Z",
        "store_name": "Bäckerei <Müller> & Co",
        "cart_id": "cart_42",
        "cart_value": 12950,
        "currency": "EUR",
        "value_text": "€129.50",
        "items": [
            {"name": "Sourdough loaf", "quantity": 2, "line_total_text": "€12.00"},
            {"name": "Stand mixer", "quantity": 1, "line_total_text": "€117.50"},
        ],
        "contact_name": "Ana Novak",
        "contact_email": "ana@example.com",
        "contact_phone": "+14155552345",
        "cart_url": "https://shop.example.com/cart/recover?token=abc",
    }
    assert SECRET.encode() not in request.body


def test_the_same_alert_signs_to_the_same_bytes(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)
    channel = _channel(stand_in, http)

    channel.send(_alert())
    channel.send(_alert())

    first, second = stand_in.received
    assert first.body == second.body
    assert first.headers["X-Cartback-Signature"] == second.headers["X-Cartback-Signature"]
    assert first.headers["X-Cartback-Delivery"] == second.headers["X-Cartback-Delivery"]


def test_recovery_alert_with_no_contact(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda request: Reply(204), path=HOOK)
    alert = _alert(
        kind="cart_recovered",
        contact_name=None,
        contact_email=None,
        contact_phone=None,
        cart_url=None,
    )

    result = _channel(stand_in, http).send(alert)

    assert result.provider_message_id == "alert_01HQ7Z"
    [request] = stand_in.received
    assert request.headers["X-Cartback-Event"] == "cart_recovered"
    _assert_signed(request)
    body = json.loads(request.body)
    assert body["event"] == "cart_recovered"
    assert body["contact_name"] is body["contact_phone"] is body["cart_url"] is None


def test_slack_body_is_a_call_this_shopper_task(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)

    _channel(stand_in, http, slack=True).send(_alert())

    [request] = stand_in.received
    assert request.headers["Content-Type"] == "application/json"
    _assert_signed(request)
    body = json.loads(request.body)
    assert list(body) == ["text", "blocks"]
    assert "Call this shopper" in body["text"]
    assert "Ana Novak" in body["text"]
    blocks = body["blocks"]
    assert all(isinstance(block, dict) and "type" in block for block in blocks)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text"
    [call] = [b for b in blocks if b["type"] == "section" and "fields" in b]
    assert call["text"] == {"type": "mrkdwn", "text": "*Call this shopper*"}
    contact, value = (f["text"] for f in call["fields"])
    assert "Ana Novak" in contact
    assert "+14155552345" in contact
    assert "ana@example.com" in contact
    assert "€129.50" in value
    items = next(b for b in blocks if b["type"] == "section" and "Items" in b["text"]["text"])
    assert "2 × Sourdough loaf — €12.00" in items["text"]["text"]
    assert "1 × Stand mixer — €117.50" in items["text"]["text"]
    [context] = [b for b in blocks if b["type"] == "context"]
    link = "<https://shop.example.com/cart/recover?token=abc|Open cart>"
    assert link in context["elements"][0]["text"]
    # mrkdwn control characters in shop data are escaped, not interpreted
    assert "Bäckerei &lt;Müller&gt; &amp; Co" in body["text"]


def test_slack_body_for_a_recovered_cart(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)

    _channel(stand_in, http, slack=True).send(_alert(kind="cart_recovered"))

    body = json.loads(stand_in.received[0].body)
    assert body["text"].startswith("Cart recovered")
    assert "Call this shopper" not in json.dumps(body)


# --- signature verification -----------------------------------------------------------------


def test_tampered_body_fails_verification(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)
    _channel(stand_in, http).send(_alert())
    [request] = stand_in.received
    stamp = request.headers["X-Cartback-Timestamp"]
    header = request.headers["X-Cartback-Signature"]

    tampered = request.body.replace(b"12950", b"99999")
    assert tampered != request.body
    assert not verify_signature(SECRET, stamp, tampered, header, now=NOW)
    assert not verify_signature(SECRET, stamp, request.body + b" ", header, now=NOW)
    assert not verify_signature("another-secret", stamp, request.body, header, now=NOW)
    assert not verify_signature(SECRET, str(int(stamp) + 1), request.body, header, now=NOW)
    assert not verify_signature(SECRET, stamp, request.body, header.upper(), now=NOW)
    assert not verify_signature(SECRET, stamp, request.body, header[len("sha256=") :], now=NOW)
    assert not verify_signature(SECRET, stamp, request.body, None, now=NOW)
    assert not verify_signature(SECRET, stamp, request.body, "sha256=é", now=NOW)
    assert not verify_signature(SECRET, "not-a-number", request.body, header, now=NOW)


def test_stale_or_future_timestamp_fails_verification(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(_ok, path=HOOK)
    _channel(stand_in, http).send(_alert())
    [request] = stand_in.received
    args = (
        SECRET,
        request.headers["X-Cartback-Timestamp"],
        request.body,
        request.headers["X-Cartback-Signature"],
    )

    assert verify_signature(*args, now=NOW + timedelta(seconds=300))
    assert not verify_signature(*args, now=NOW + timedelta(seconds=301))
    assert not verify_signature(*args, now=NOW - timedelta(seconds=301))
    assert not verify_signature(*args, now=NOW + timedelta(hours=1))
    assert verify_signature(*args, now=NOW + timedelta(hours=1), tolerance=3600)


# --- failures -------------------------------------------------------------------------------


def test_410_means_the_receiver_is_gone(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda request: Reply(410, b"channel_is_archived"), path=HOOK)

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http, slack=True).send(_alert())

    assert raised.value.code == "webhook.410"
    assert "the receiver is gone" in raised.value.reason
    assert "channel_is_archived" in raised.value.reason
    assert not isinstance(raised.value, TransientSendError)


def test_other_4xx_is_permanent(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda request: Reply(400, b"invalid_payload"), path=HOOK)

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http).send(_alert())

    assert raised.value.code == "webhook.400"
    assert "invalid_payload" in raised.value.reason


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_transient_with_retry_after(
    serve: Serve, http: httpx.Client, status: int
) -> None:
    stand_in = serve(
        lambda request: Reply(status, b"slow down", (("Retry-After", "17"),)), path=HOOK
    )

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_alert())

    assert (raised.value.code, raised.value.retry_after) == (f"webhook.{status}", 17.0)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_429_with_an_http_date_retry_after(serve: Serve, http: httpx.Client) -> None:
    when = "Mon, 05 Jan 2026 09:01:00 GMT"  # 60 s after NOW
    stand_in = serve(lambda request: Reply(429, b"", (("Retry-After", when),)), path=HOOK)

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_alert())

    assert raised.value.retry_after == 60.0


def test_500_is_transient(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda request: Reply(500, b"boom"), path=HOOK)

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_alert())

    assert (raised.value.code, raised.value.retry_after) == ("webhook.500", None)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_redirect_is_not_followed(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(
        lambda request: Reply(301, b"", (("Location", "http://127.0.0.1:9/x"),)), path=HOOK
    )

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http).send(_alert())

    assert raised.value.code == "webhook.301"
    assert len(stand_in.received) == 1


def test_connect_failure_is_transient(http: httpx.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    channel = WebhookAlert(f"http://127.0.0.1:{port}/hook", SECRET, client=http)

    with pytest.raises(TransientSendError) as raised:
        channel.send(_alert())

    assert raised.value.code == "webhook.connect"
    assert not isinstance(raised.value, SendOutcomeUnknown)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_timeout_after_sending_is_reported_as_unknown(serve: Serve) -> None:
    stand_in = serve(lambda request: Reply(200, b"ok", delay=5.0), path=HOOK)
    channel = WebhookAlert(
        stand_in.url, SECRET, timeout=httpx.Timeout(0.3, connect=1.0), clock=ManualClock(NOW)
    )

    with pytest.raises(SendOutcomeUnknown) as raised:
        channel.send(_alert())
    channel.close()

    assert raised.value.code == "webhook.timeout_after_send"
    assert isinstance(raised.value, TransientSendError)
    assert len(stand_in.received) == 1  # the request did reach the receiver
    _assert_signed(stand_in.received[0])


# --- the secret stays secret ----------------------------------------------------------------


def _echo_everything(request: Received) -> Reply:
    """A careless receiver that echoes the signed headers and a secret it was given."""
    echoed = json.dumps({"headers": request.headers, "hint": f"expected secret {SECRET}"})
    return Reply(400, echoed.encode())


@pytest.mark.parametrize(
    "answer",
    [
        _echo_everything,
        lambda request: Reply(410),
        lambda request: Reply(429, headers=(("Retry-After", "1"),)),
        lambda request: Reply(503, f"down {SECRET}".encode()),
    ],
)
def test_secret_never_in_errors_or_logs(
    serve: Serve,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    answer: Callable[[Received], Reply],
) -> None:
    stand_in = serve(answer, path=HOOK)
    channel = _channel(stand_in, http)

    with caplog.at_level(logging.DEBUG), pytest.raises(ChannelError) as raised:
        channel.send(_alert())

    _assert_secret_absent(raised.value, caplog, channel)


def test_secret_never_in_transport_errors(
    serve: Serve, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in = serve(lambda request: Reply(200, delay=5.0), path=HOOK)
    url = f"{stand_in.url}?token={SECRET}"  # a URL that is itself a credential (Slack-style)
    channel = WebhookAlert(
        url, SECRET, timeout=httpx.Timeout(0.3, connect=1.0), clock=ManualClock(NOW)
    )

    with caplog.at_level(logging.WARNING), pytest.raises(SendOutcomeUnknown) as raised:
        channel.send(_alert())
    channel.close()

    _assert_secret_absent(raised.value, caplog, channel)


def _assert_secret_absent(
    error: BaseException, caplog: pytest.LogCaptureFixture, channel: WebhookAlert
) -> None:
    rendered = "".join(traceback.format_exception(error))
    texts = [str(error), repr(error), rendered, repr(channel)]
    if isinstance(error, ChannelError):
        texts += [error.code, error.reason]
    texts += [record.getMessage() for record in caplog.records if record.name != "httpx"]
    texts += [repr(record.__dict__) for record in caplog.records if record.name != "httpx"]
    for text in texts:
        assert SECRET not in text
    assert any(record.getMessage() == "webhook.send_failed" for record in caplog.records)


# --- construction ---------------------------------------------------------------------------


def test_alert_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        _alert(kind="cart_created")
    with pytest.raises(ValueError, match="aware"):
        _alert(occurred_at=datetime(2026, 1, 5, 9, 0))  # noqa: DTZ001
    with pytest.raises(ValueError, match="cart_value"):
        _alert(cart_value=129.5)
    with pytest.raises(ValueError, match="alert_id"):
        _alert(alert_id="a\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="currency"):
        _alert(currency="euro")
    with pytest.raises(ValueError, match="secret"):
        WebhookAlert("https://hooks.example.com/x", "")
    with pytest.raises(ValueError, match="url"):
        WebhookAlert("ftp://hooks.example.com/x", SECRET)
