"""WhatsAppCloud against a real HTTP server on loopback that speaks the Graph API's format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cartback.channels import (
    OutgoingWhatsApp,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
    WhatsAppCloud,
)
from support.stand_in import Received, Reply, Serve, StandIn

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAGm0PX4ZCpsBAsecret-token-value"
VERSION = "v24.0"
MESSAGES_PATH = f"/{VERSION}/{PHONE_NUMBER_ID}/messages"

# recipients that make the stand-in answer with an error: to -> (HTTP status, Graph error)
ERRORS: dict[str, tuple[int, int, str, str]] = {
    "15550000001": (400, 131026, "Message undeliverable", "Recipient is not a WhatsApp user"),
    "15550000002": (
        400,
        131047,
        "Re-engagement message",
        "More than 24 hours have passed since the recipient last replied to the sender number.",
    ),
    "15550000003": (
        400,
        131049,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    "15550000004": (400, 131050, "Unable to deliver the message", "User stopped marketing"),
    "15550000005": (
        404,
        132001,
        "Template name does not exist in the translation",
        "template name (abandoned_cart_reminder) does not exist in en_US",
    ),
    "15550000006": (400, 130429, "Rate limit hit", "Cloud API message throughput reached."),
    "15550000007": (
        400,
        131056,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient.",
    ),
}


def graph_error(status: int, code: int, message: str, details: str = "") -> Reply:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AazCQ3N1jjW2r9ZF1Y8LxJ0",
    }
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Reply(status, json.dumps({"error": error}).encode())


def graph_answer(samples_dir: Path) -> Callable[[Received], Reply]:
    """The Graph API's /messages: bearer token, JSON body, the sample 200 or an error by ``to``."""

    def answer(request: Received) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return graph_error(
                401, 190, "Invalid OAuth access token - Cannot parse access token", ""
            )
        if request.path != MESSAGES_PATH:
            return graph_error(400, 100, "Unsupported post request.")
        to = json.loads(request.body)["to"]
        if to in ERRORS:
            return graph_error(*ERRORS[to])
        return Reply(200, (samples_dir / "whatsapp_send_response.json").read_bytes())

    return answer


def _sample(samples_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (samples_dir / "whatsapp_send_template_request.json").read_text()
    )
    return data


def _msg(to: str = "16505076520", **overrides: Any) -> OutgoingWhatsApp:
    fields: dict[str, Any] = {
        "message_id": "msg-1",
        "to": to,
        "template_name": "cart_nudge",
        "language_code": "de",
        "body_parameters": ("Jonas",),
        "url_button_parameter": "tok-1",
    }
    fields.update(overrides)
    return OutgoingWhatsApp(**fields)


def _channel(stand_in: StandIn, http: httpx.Client, token: str = TOKEN) -> WhatsAppCloud:
    return WhatsAppCloud(
        PHONE_NUMBER_ID, token, base_url=stand_in.url, api_version=VERSION, client=http
    )


def test_sends_the_sample_shape_with_our_values_and_reads_the_wamid(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(graph_answer(samples_dir))
    msg = OutgoingWhatsApp(
        message_id="cart-77",
        to="+4915112345678",
        template_name="warenkorb_erinnerung",
        language_code="de",
        body_parameters=("Jürgen", "Blaue Jacke (L) ✓", "59,90 €"),
        url_button_parameter="Zx91Qp",
        header_image_url="https://laden.example.de/img/jacke.jpg",
    )

    result = _channel(stand_in, http).send(msg)

    assert (result.provider, result.provider_message_id) == (
        "whatsapp",
        "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
    )
    [request] = stand_in.received
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    expected = _sample(samples_dir)
    expected["to"] = "4915112345678"
    expected["template"]["name"] = "warenkorb_erinnerung"
    expected["template"]["language"]["code"] = "de"
    header, body, button = expected["template"]["components"]
    header["parameters"][0]["image"]["link"] = "https://laden.example.de/img/jacke.jpg"
    for parameter, text in zip(
        body["parameters"], ("Jürgen", "Blaue Jacke (L) ✓", "59,90 €"), strict=True
    ):
        parameter["text"] = text
    button["parameters"][0]["text"] = "Zx91Qp"
    assert json.loads(request.body) == expected


def test_the_sample_values_give_the_sample_body_key_for_key(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(graph_answer(samples_dir))
    sample = _sample(samples_dir)
    header, body, button = sample["template"]["components"]

    _channel(stand_in, http).send(
        OutgoingWhatsApp(
            message_id="m1",
            to=sample["to"],
            template_name=sample["template"]["name"],
            language_code=sample["template"]["language"]["code"],
            body_parameters=tuple(p["text"] for p in body["parameters"]),
            url_button_parameter=button["parameters"][0]["text"],
            header_image_url=header["parameters"][0]["image"]["link"],
        )
    )

    received = json.loads(stand_in.received[0].body)
    assert received == sample
    assert json.dumps(received) == json.dumps(sample)  # same key order too


def test_components_without_header_or_button_are_left_out(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(graph_answer(samples_dir))

    _channel(stand_in, http).send(_msg(url_button_parameter=None))
    _channel(stand_in, http).send(_msg(body_parameters=(), url_button_parameter=None))

    first, second = (json.loads(r.body)["template"] for r in stand_in.received)
    assert first["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Jonas"}]}
    ]
    assert second == {"name": "cart_nudge", "language": {"code": "de"}}


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("15550000001", "whatsapp.131026"),
        ("15550000002", "whatsapp.131047"),
        ("15550000003", "whatsapp.131049"),
        ("15550000004", "whatsapp.131050"),
        ("15550000005", "whatsapp.132001"),
    ],
)
def test_documented_refusals_are_permanent(
    serve: Serve, http: httpx.Client, samples_dir: Path, to: str, code: str
) -> None:
    stand_in = serve(graph_answer(samples_dir))

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http).send(_msg(to))

    _, _, message, details = ERRORS[to]
    assert raised.value.code == code
    assert raised.value.reason == f"{message}: {details}"
    assert len(stand_in.received) == 1  # tried once, not retried


@pytest.mark.parametrize(
    ("to", "code"), [("15550000006", "whatsapp.130429"), ("15550000007", "whatsapp.131056")]
)
def test_rate_limit_codes_are_transient(
    serve: Serve, http: httpx.Client, samples_dir: Path, to: str, code: str
) -> None:
    stand_in = serve(graph_answer(samples_dir))

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_msg(to))

    assert (raised.value.code, raised.value.retry_after) == (code, None)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_429_with_a_rate_limit_code_carries_retry_after(serve: Serve, http: httpx.Client) -> None:
    error = graph_error(429, 130429, "Rate limit hit")
    stand_in = serve(lambda _: Reply(429, error.body, (*error.headers, ("Retry-After", "17"))))

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_msg())

    assert (raised.value.code, raised.value.retry_after) == ("whatsapp.130429", 17.0)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_bare_429_is_transient_with_retry_after(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda _: Reply(429, b"", (("Retry-After", "3"),)))

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_msg())

    assert (raised.value.code, raised.value.retry_after) == ("whatsapp.http_429", 3.0)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, b"<html>oops</html>", (("Content-Type", "text/html"),)),
        graph_error(500, 2, "Service temporarily unavailable"),
    ],
)
def test_500_is_transient(serve: Serve, http: httpx.Client, reply: Reply) -> None:
    stand_in = serve(lambda _: reply)

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_msg())

    assert raised.value.code in ("whatsapp.http_500", "whatsapp.2")
    assert raised.value.retry_after is None
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_wrong_token_is_permanent_and_never_shows_the_token(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(graph_answer(samples_dir))
    wrong = "EAAGwrong-secret-token"

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http, token=wrong).send(_msg())

    assert raised.value.code == "whatsapp.190"
    assert wrong not in str(raised.value)
    assert wrong not in repr(_channel(stand_in, http, token=wrong))


def test_an_error_echoing_the_token_is_masked(
    serve: Serve, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in = serve(
        lambda request: graph_error(
            400, 100, f"Invalid parameter near {request.headers['Authorization']}", TOKEN
        )
    )

    with caplog.at_level("DEBUG"), pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http).send(_msg())

    assert raised.value.code == "whatsapp.100"
    assert "***" in raised.value.reason
    for text in (str(raised.value), raised.value.reason, repr(raised.value), caplog.text):
        assert TOKEN not in text


def test_timeout_after_sending_is_reported_as_unknown(
    serve: Serve, samples_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = graph_answer(samples_dir)
    stand_in = serve(lambda request: Reply(200, answer(request).body, delay=5.0))
    channel = WhatsAppCloud(
        PHONE_NUMBER_ID,
        TOKEN,
        base_url=stand_in.url,
        api_version=VERSION,
        timeout=httpx.Timeout(0.3, connect=1.0),
    )

    with caplog.at_level("DEBUG"), pytest.raises(SendOutcomeUnknown) as raised:
        channel.send(_msg())
    channel.close()

    assert raised.value.code == "whatsapp.timeout_after_send"
    assert isinstance(raised.value, TransientSendError)
    assert len(stand_in.received) == 1  # the request did reach Meta
    assert TOKEN not in str(raised.value) and TOKEN not in caplog.text


def test_connection_refused_is_transient_connect(http: httpx.Client) -> None:
    channel = WhatsAppCloud(PHONE_NUMBER_ID, TOKEN, base_url="http://127.0.0.1:9", client=http)

    with pytest.raises(TransientSendError) as raised:
        channel.send(_msg())

    assert raised.value.code == "whatsapp.connect"
    assert not isinstance(raised.value, SendOutcomeUnknown)
    assert TOKEN not in str(raised.value)


def test_2xx_without_a_wamid_is_unknown(serve: Serve, http: httpx.Client) -> None:
    stand_in = serve(lambda _: Reply(200, b'{"messaging_product": "whatsapp"}'))

    with pytest.raises(SendOutcomeUnknown) as raised:
        _channel(stand_in, http).send(_msg())

    assert raised.value.code == "whatsapp.bad_response"


def test_message_status_becomes_the_detail(serve: Serve, http: httpx.Client) -> None:
    body = {"messages": [{"id": "wamid.X", "message_status": "accepted"}]}
    stand_in = serve(lambda _: Reply(200, json.dumps(body).encode()))

    result = _channel(stand_in, http).send(_msg())

    assert (result.provider_message_id, result.detail) == ("wamid.X", "accepted")


@pytest.mark.parametrize(
    "msg",
    [
        _msg(to="0165"),
        _msg(to="+1 650 507 6520"),
        _msg(body_parameters=("",)),
        _msg(body_parameters=("line\nbreak",)),
        _msg(body_parameters=("tab\there",)),
        _msg(url_button_parameter="five     spaces"),
    ],
)
def test_a_message_meta_would_refuse_is_not_sent(
    serve: Serve, http: httpx.Client, samples_dir: Path, msg: OutgoingWhatsApp
) -> None:
    stand_in = serve(graph_answer(samples_dir))

    with pytest.raises(PermanentSendError) as raised:
        _channel(stand_in, http).send(msg)

    assert raised.value.code == "whatsapp.invalid_message"
    assert stand_in.received == []


def test_429_with_an_unlisted_code_is_still_transient(serve: Serve, http: httpx.Client) -> None:
    error = graph_error(429, 100, "Too many calls")
    stand_in = serve(lambda _: error)

    with pytest.raises(TransientSendError) as raised:
        _channel(stand_in, http).send(_msg())

    assert raised.value.code == "whatsapp.http_429"
