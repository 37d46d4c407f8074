"""TwilioSms and HttpSms against real HTTP servers on loopback that speak the providers' format."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from cartback.channels import (
    HttpSms,
    HttpSmsConfig,
    OutgoingSms,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
    TwilioSms,
)
from cartback.core.clock import ManualClock
from support.stand_in import Received, Reply, StandIn

ACCOUNT_SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
AUTH_TOKEN = "your_auth_token"  # the sample request's Authorization is built from these two
SERVICE_SID = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
UNSUBSCRIBED = "+14155550100"
INVALID = "+1415"


# --- Twilio ---------------------------------------------------------------------------------


def _twilio_error(code: int, message: str, status: int = 400) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply(status, json.dumps(body).encode())


def twilio_answer(samples_dir: Path) -> Callable[[Received], Reply]:
    """Twilio's Messages.json: Basic auth, form body, the sample 201 or an error by recipient."""
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()

    def answer(request: Received) -> Reply:
        if request.headers.get("Authorization") != expected_auth:
            return _twilio_error(20003, "Authenticate", status=401)
        if request.path != MESSAGES_PATH:
            return _twilio_error(20404, "The requested resource was not found", status=404)
        form = dict(parse_qsl(request.body.decode()))
        if form.get("To") == UNSUBSCRIBED:
            return _twilio_error(21610, "Attempt to send to unsubscribed recipient")
        if form.get("To") == INVALID:
            return _twilio_error(21211, "The 'To' number +1415 is not a valid phone number.")
        sample = (
            "twilio_message_create_response_messaging_service.json"
            if "MessagingServiceSid" in form
            else "twilio_message_create_response.json"
        )
        return Reply(201, (samples_dir / sample).read_bytes())

    return answer


def _sample_request(samples_dir: Path) -> tuple[str, dict[str, str], bytes]:
    head, _, body = (
        (samples_dir / "twilio_send_message_request.txt").read_bytes().partition(b"\r\n\r\n")
    )
    if not body:
        head, _, body = head.partition(b"\n\n")
    lines = head.decode().splitlines()
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0].split()[1], headers, body.strip()


def _sms_like_sample(samples_dir: Path) -> OutgoingSms:
    _, _, body = _sample_request(samples_dir)
    form = dict(parse_qsl(body.decode()))
    return OutgoingSms(
        message_id="cart123",
        to_number=form["To"],
        messaging_service_sid=form["MessagingServiceSid"],
        body=form["Body"],
        status_callback_url=form["StatusCallback"],
    )


def _twilio(stand_in: StandIn, http: httpx.Client, clock: ManualClock | None = None) -> TwilioSms:
    return TwilioSms(ACCOUNT_SID, AUTH_TOKEN, base_url=stand_in.url, client=http, clock=clock)


def test_twilio_sends_the_sample_request_and_reads_the_sid(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(twilio_answer(samples_dir))
    sample_path, sample_headers, sample_body = _sample_request(samples_dir)

    result = _twilio(stand_in, http).send(_sms_like_sample(samples_dir))

    assert (result.provider, result.provider_message_id, result.detail) == (
        "twilio",
        "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "queued",
    )
    [request] = stand_in.received
    assert (request.method, request.path) == ("POST", sample_path)
    assert request.headers["Authorization"] == sample_headers["Authorization"]
    assert request.headers["Content-Type"] == sample_headers["Content-Type"]
    assert parse_qsl(request.body.decode()) == parse_qsl(sample_body.decode())
    assert request.body == sample_body


def test_twilio_sends_from_a_number_without_status_callback(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(twilio_answer(samples_dir))
    sms = OutgoingSms("m1", "+14155552345", "Hi ünïcode 👍", from_number="+14155550001")

    result = _twilio(stand_in, http).send(sms)

    assert result.provider_message_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    assert parse_qsl(stand_in.received[0].body.decode()) == [
        ("To", "+14155552345"),
        ("From", "+14155550001"),
        ("Body", "Hi ünïcode 👍"),
    ]


@pytest.mark.parametrize(
    ("to", "code"), [(UNSUBSCRIBED, "twilio.21610"), (INVALID, "twilio.21211")]
)
def test_twilio_unsubscribed_or_invalid_recipient_is_permanent(
    serve: Callable[[Callable[[Received], Reply]], StandIn],
    http: httpx.Client,
    samples_dir: Path,
    to: str,
    code: str,
) -> None:
    stand_in = serve(twilio_answer(samples_dir))

    with pytest.raises(PermanentSendError) as raised:
        _twilio(stand_in, http).send(OutgoingSms("m1", to, "Hi", messaging_service_sid=SERVICE_SID))

    assert raised.value.code == code
    assert len(stand_in.received) == 1  # tried once, not retried


def test_twilio_wrong_credentials_are_permanent(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(twilio_answer(samples_dir))
    channel = TwilioSms(ACCOUNT_SID, "wrong", base_url=stand_in.url, client=http)

    with pytest.raises(PermanentSendError) as raised:
        channel.send(OutgoingSms("m1", "+14155552345", "Hi", messaging_service_sid=SERVICE_SID))

    assert (raised.value.code, raised.value.reason) == ("twilio.20003", "Authenticate")


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("Mon, 05 Jan 2026 09:00:30 GMT", 30.0)]
)
def test_twilio_429_is_transient_with_retry_after(
    serve: Callable[[Callable[[Received], Reply]], StandIn],
    http: httpx.Client,
    header: str,
    expected: float,
) -> None:
    error = _twilio_error(20429, "Too Many Requests", status=429)
    stand_in = serve(lambda _: Reply(429, error.body, (*error.headers, ("Retry-After", header))))
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))

    with pytest.raises(TransientSendError) as raised:
        _twilio(stand_in, http, clock=clock).send(
            OutgoingSms("m1", "+14155552345", "Hi", messaging_service_sid=SERVICE_SID)
        )

    assert (raised.value.code, raised.value.retry_after) == ("twilio.429", expected)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_twilio_500_is_transient(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client
) -> None:
    stand_in = serve(lambda _: Reply(500, b"<html>oops</html>", (("Content-Type", "text/html"),)))

    with pytest.raises(TransientSendError) as raised:
        _twilio(stand_in, http).send(
            OutgoingSms("m1", "+14155552345", "Hi", messaging_service_sid=SERVICE_SID)
        )

    assert (raised.value.code, raised.value.retry_after) == ("twilio.http_500", None)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_twilio_timeout_after_sending_is_reported_as_unknown(
    serve: Callable[[Callable[[Received], Reply]], StandIn], samples_dir: Path
) -> None:
    answer = twilio_answer(samples_dir)
    stand_in = serve(lambda request: Reply(201, answer(request).body, delay=5.0))
    channel = TwilioSms(
        ACCOUNT_SID, AUTH_TOKEN, base_url=stand_in.url, timeout=httpx.Timeout(0.3, connect=1.0)
    )

    with pytest.raises(SendOutcomeUnknown) as raised:
        channel.send(OutgoingSms("m1", "+14155552345", "Hi", messaging_service_sid=SERVICE_SID))
    channel.close()

    assert raised.value.code == "twilio.timeout_after_send"
    assert isinstance(raised.value, TransientSendError)
    assert len(stand_in.received) == 1  # the request did reach the provider


def test_twilio_connection_refused_is_transient_connect(http: httpx.Client) -> None:
    channel = TwilioSms(ACCOUNT_SID, AUTH_TOKEN, base_url="http://127.0.0.1:9", client=http)

    with pytest.raises(TransientSendError) as raised:
        channel.send(OutgoingSms("m1", "+14155552345", "Hi", messaging_service_sid=SERVICE_SID))

    assert raised.value.code == "twilio.connect"
    assert not isinstance(raised.value, SendOutcomeUnknown)


# --- generic HTTP provider ------------------------------------------------------------------

REGIONAL_TOKEN = "Bearer regional-secret"


def regional_answer(request: Received) -> Reply:
    """A made-up regional provider: JSON in, ``{"data": {"message_id": ...}}`` out."""
    if request.headers.get("Authorization") != REGIONAL_TOKEN:
        return Reply(401, b'{"error": "UNAUTHORIZED"}')
    payload = json.loads(request.body)
    if payload["recipient"] == INVALID:
        return Reply(422, b'{"error": "INVALID_NUMBER", "detail": "bad msisdn"}')
    if payload["recipient"] == UNSUBSCRIBED:
        return Reply(503, b'{"error": "THROTTLED"}', (("Retry-After", "12"),))
    return Reply(202, b'{"data": {"message_id": "rg-778"}, "ok": true}')


def _regional(stand_in: StandIn, http: httpx.Client) -> HttpSms:
    config = HttpSmsConfig(
        url=f"{stand_in.url}/v1/send",
        template={
            "recipient": "{to}",
            "sender": "{from}",
            "text": "{body}",
            "ref": "{message_id}",
            "tags": ["cart"],
        },
        auth_header=("Authorization", REGIONAL_TOKEN),
        id_path="data.message_id",
        errors={"INVALID_NUMBER": "permanent", "THROTTLED": "transient"},
        name="regional",
    )
    return HttpSms(config, client=http)


def test_http_sms_success_fills_the_template_and_reads_the_id(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client
) -> None:
    stand_in = serve(regional_answer)
    sms = OutgoingSms("m-42", "+77011234567", 'Сәлем "Anna"', from_number="SHOP")

    result = _regional(stand_in, http).send(sms)

    assert (result.provider, result.provider_message_id) == ("regional", "rg-778")
    [request] = stand_in.received
    assert request.path == "/v1/send"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "recipient": "+77011234567",
        "sender": "SHOP",
        "text": 'Сәлем "Anna"',
        "ref": "m-42",
        "tags": ["cart"],
    }


def test_http_sms_string_template_escapes_values(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client
) -> None:
    stand_in = serve(lambda _: Reply(200, b"OK id=abc-1"))
    config = HttpSmsConfig(
        url=f"{stand_in.url}/send",
        template='{"to": "{to}", "text": "{body}"}',
        id_regex=r"id=([\w-]+)",
    )

    result = HttpSms(config, client=http).send(
        OutgoingSms("m1", "+14155552345", 'a "quoted" {body}\n', from_number="+1")
    )

    assert result.provider_message_id == "abc-1"
    assert json.loads(stand_in.received[0].body) == {
        "to": "+14155552345",
        "text": 'a "quoted" {body}\n',
    }


def test_http_sms_mapped_error_is_permanent(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client
) -> None:
    stand_in = serve(regional_answer)

    with pytest.raises(PermanentSendError) as raised:
        _regional(stand_in, http).send(OutgoingSms("m1", INVALID, "Hi", from_number="SHOP"))

    assert raised.value.code == "regional.INVALID_NUMBER"
    assert len(stand_in.received) == 1


def test_http_sms_mapped_error_is_transient_with_retry_after(
    serve: Callable[[Callable[[Received], Reply]], StandIn], http: httpx.Client
) -> None:
    stand_in = serve(regional_answer)

    with pytest.raises(TransientSendError) as raised:
        _regional(stand_in, http).send(OutgoingSms("m1", UNSUBSCRIBED, "Hi", from_number="SHOP"))

    assert (raised.value.code, raised.value.retry_after) == ("regional.THROTTLED", 12.0)


def test_http_sms_unmapped_4xx_is_permanent(
    serve: Callable[[Callable[[Received], Reply]], StandIn],
) -> None:
    stand_in = serve(regional_answer)
    config = HttpSmsConfig(url=f"{stand_in.url}/v1/send", template={"recipient": "{to}"})

    with pytest.raises(PermanentSendError) as raised:
        HttpSms(config).send(OutgoingSms("m1", "+14155552345", "Hi", from_number="SHOP"))

    assert raised.value.code == "http_sms.http_401"
