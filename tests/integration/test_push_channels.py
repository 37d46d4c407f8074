"""WebPushSender and FcmSender against real HTTP servers on loopback.

The web push service checks what a real one checks (the VAPID JWT's signature, aud, exp and
sub; TTL; aes128gcm) and decrypts the body with the subscription's private key, as the
browser would. The FCM stand-in is two servers: a token endpoint that verifies the RS256
assertion against the test's service-account key, and the v1 send endpoint that only takes
the access tokens it issued and a body in the sample's shape.
"""

from __future__ import annotations

import functools
import json
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cartback.channels import (
    ChannelError,
    FcmSender,
    OutgoingPush,
    PermanentSendError,
    PushGone,
    SendOutcomeUnknown,
    TransientSendError,
    WebPushSender,
    WebPushTarget,
)
from cartback.core.clock import ManualClock
from support.push_services import (
    AUTH,
    PROJECT,
    SEND_PATH,
    SUBJECT,
    SUBSCRIPTION_PATH,
    UA_KEY,
    VAPID_KEY,
    VAPID_PEM,
    VAPID_RAW,
    FcmEndpoint,
    PushService,
    TokenEndpoint,
    b64url,
    fcm_error,
    headers_of,
    json_reply,
    point,
    rfc8291_decrypt,
    service_account,
)
from support.stand_in import Reply, Serve, StandIn

LOCATION = "https://push.example.net/m/7c1f0a"
DEVICE = "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1-device-token"


def push(**changes: Any) -> OutgoingPush:
    fields: dict[str, Any] = {
        "message_id": "msg-41",
        "title": "You left something behind",
        "body": "Blue Hoodie (M) is still in your cart. Grüße 🛒",
        "url": "https://shop.example.com/r/Ab3dE9",
        "icon_url": "https://shop.example.com/img/blue-hoodie.jpg",
    }
    fields.update(changes)
    return OutgoingPush(**fields)


def _text(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error)) + repr(error) + str(error)
    if isinstance(error, ChannelError):
        text += error.code + error.reason
    return text


def push_service(serve: Serve, clock: ManualClock, reply: Reply) -> tuple[StandIn, PushService]:
    service = PushService(clock, reply)
    return serve(service, path=SUBSCRIPTION_PATH), service


def target(stand_in: StandIn, **changes: str) -> WebPushTarget:
    fields = {"endpoint": stand_in.url, "p256dh": b64url(point(UA_KEY)), "auth": b64url(AUTH)}
    fields.update(changes)
    return WebPushTarget(**fields)


def web_sender(
    http: httpx.Client, clock: ManualClock, key: str = VAPID_PEM, **kwargs: Any
) -> WebPushSender:
    return WebPushSender(key, SUBJECT, client=http, clock=clock, **kwargs)


CREATED = Reply(201, headers=(("Location", LOCATION),))


@pytest.mark.parametrize("key", [VAPID_PEM, VAPID_RAW], ids=["pem", "raw"])
def test_web_push_is_signed_encrypted_and_decrypts_to_the_payload(
    serve: Serve, http: httpx.Client, clock: ManualClock, key: str
) -> None:
    stand_in, service = push_service(serve, clock, CREATED)

    result = web_sender(http, clock, key).send(target(stand_in), push())

    assert (result.provider, result.provider_message_id) == ("webpush", LOCATION)
    assert service.problems == []
    [request] = stand_in.received
    assert (request.method, request.path) == ("POST", SUBSCRIPTION_PATH)
    headers = headers_of(request)
    assert headers["ttl"] == "86400"
    assert headers["urgency"] == "normal"
    assert headers["content-type"] == "application/octet-stream"
    assert service.payloads == [
        {
            "title": "You left something behind",
            "body": "Blue Hoodie (M) is still in your cart. Grüße 🛒",
            "url": "https://shop.example.com/r/Ab3dE9",
            "icon": "https://shop.example.com/img/blue-hoodie.jpg",
            "message_id": "msg-41",
        }
    ]


def test_the_vapid_jwt_expires_in_12_hours_for_the_endpoint_origin(
    serve: Serve, http: httpx.Client, clock: ManualClock
) -> None:
    stand_in, _ = push_service(serve, clock, CREATED)

    web_sender(http, clock).send(target(stand_in), push())

    [request] = stand_in.received
    token = headers_of(request)["authorization"].split("t=", 1)[1].split(",", 1)[0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "aud": stand_in.url.removesuffix(SUBSCRIPTION_PATH),
        "exp": int((clock.now() + timedelta(hours=12)).timestamp()),
        "sub": SUBJECT,
    }


def test_the_body_is_rfc8291_aes128gcm_with_a_fresh_key_per_message(
    serve: Serve, http: httpx.Client, clock: ManualClock
) -> None:
    stand_in, _ = push_service(serve, clock, CREATED)
    sender = web_sender(http, clock)

    sender.send(target(stand_in), push())
    sender.send(target(stand_in), push())

    first, second = (request.body for request in stand_in.received)
    assert json.loads(rfc8291_decrypt(first, UA_KEY, AUTH))["message_id"] == "msg-41"
    assert first[21:86] != second[21:86]  # a new ECDH key each time...
    assert first[21:86] != point(VAPID_KEY)  # ...and never the VAPID key
    assert first[:16] != second[:16]  # a new salt each time


def test_the_ttl_is_always_explicit_even_zero(
    serve: Serve, http: httpx.Client, clock: ManualClock
) -> None:
    stand_in, _ = push_service(serve, clock, CREATED)

    web_sender(http, clock).send(target(stand_in), push(ttl_seconds=0, icon_url=None))

    [request] = stand_in.received
    assert headers_of(request)["ttl"] == "0"


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_says_delete_it(
    serve: Serve, http: httpx.Client, clock: ManualClock, status: int
) -> None:
    stand_in, service = push_service(
        serve,
        clock,
        Reply(
            status,
            b'{"code":410,"errno":106,"error":"Gone","message":"Request did not '
            b'validate: expired subscription"}',
        ),
    )

    with pytest.raises(PushGone) as raised:
        web_sender(http, clock).send(target(stand_in), push())

    assert isinstance(raised.value, PermanentSendError)
    assert raised.value.code == f"webpush.{status}"
    assert "expired subscription" in raised.value.reason
    assert service.problems == []


@pytest.mark.parametrize("status", [400, 401, 403, 413])
def test_a_refused_request_is_permanent_not_gone(
    serve: Serve, http: httpx.Client, clock: ManualClock, status: int
) -> None:
    stand_in, _ = push_service(serve, clock, Reply(status))

    with pytest.raises(PermanentSendError) as raised:
        web_sender(http, clock).send(target(stand_in), push())

    assert not isinstance(raised.value, PushGone)
    assert raised.value.code == f"webpush.{status}"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"p256dh": b64url(b"\x04" + b"\x01" * 64)}, "p256dh is not a point on P-256"),
        ({"p256dh": b64url(point(UA_KEY))[:-4]}, "p256dh is not an uncompressed P-256 point"),
        ({"auth": b64url(b"\x00" * 8)}, "auth is not 16 bytes"),
        ({"endpoint": "ftp://push.example.net/x"}, "endpoint is not an http(s) URL"),
        ({"endpoint": "http://[::1]:9/x"}, "cannot sign VAPID for the endpoint's origin"),
    ],
)
def test_a_malformed_subscription_is_permanent_and_nothing_is_sent(
    serve: Serve, http: httpx.Client, clock: ManualClock, changes: dict[str, str], reason: str
) -> None:
    stand_in, _ = push_service(serve, clock, CREATED)

    with pytest.raises(PermanentSendError) as raised:
        web_sender(http, clock).send(target(stand_in, **changes), push())

    assert (raised.value.code, raised.value.reason) == ("webpush.invalid_subscription", reason)
    assert stand_in.received == []


def test_a_payload_too_big_to_encrypt_in_4096_bytes_is_not_sent(
    serve: Serve, http: httpx.Client, clock: ManualClock
) -> None:
    stand_in, _ = push_service(serve, clock, CREATED)

    with pytest.raises(PermanentSendError) as raised:
        web_sender(http, clock).send(target(stand_in), push(body="x" * 4000))

    assert raised.value.code == "webpush.payload_too_large"
    assert stand_in.received == []


@pytest.mark.parametrize(
    ("retry_header", "expected"),
    [("120", 120.0), ("Mon, 05 Jan 2026 09:01:30 GMT", 90.0)],
)
def test_429_is_transient_with_retry_after(
    serve: Serve, http: httpx.Client, clock: ManualClock, retry_header: str, expected: float
) -> None:
    stand_in, _ = push_service(serve, clock, Reply(429, headers=(("Retry-After", retry_header),)))

    with pytest.raises(TransientSendError) as raised:
        web_sender(http, clock).send(target(stand_in), push())

    assert (raised.value.code, raised.value.retry_after) == ("webpush.429", expected)
    assert not isinstance(raised.value, SendOutcomeUnknown)


@pytest.mark.parametrize(
    ("reply", "retry"),
    [
        (Reply(500, b"Internal Server Error", (("Content-Type", "text/plain"),)), None),
        (Reply(503, headers=(("Retry-After", "30"),)), 30.0),
    ],
)
def test_5xx_is_transient(
    serve: Serve, http: httpx.Client, clock: ManualClock, reply: Reply, retry: float | None
) -> None:
    stand_in, _ = push_service(serve, clock, reply)

    with pytest.raises(TransientSendError) as raised:
        web_sender(http, clock).send(target(stand_in), push())

    assert (raised.value.code, raised.value.retry_after) == (f"webpush.{reply.status}", retry)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_timeout_after_sending_is_unknown_and_hides_the_endpoint(
    serve: Serve, http: httpx.Client, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in, _ = push_service(serve, clock, Reply(201, delay=5.0))
    sender = web_sender(http, clock, timeout=httpx.Timeout(0.3, connect=1.0))

    with caplog.at_level(logging.DEBUG), pytest.raises(SendOutcomeUnknown) as raised:
        sender.send(target(stand_in), push())

    assert raised.value.code == "webpush.timeout_after_send"
    assert len(stand_in.received) == 1  # it reached the push service
    assert SUBSCRIPTION_PATH not in _text(raised.value)
    assert SUBSCRIPTION_PATH not in caplog.text


def test_connection_refused_is_transient_connect(http: httpx.Client, clock: ManualClock) -> None:
    endpoint = f"http://127.0.0.1:9{SUBSCRIPTION_PATH}"
    subscription = WebPushTarget(endpoint, b64url(point(UA_KEY)), b64url(AUTH))

    with pytest.raises(TransientSendError) as raised:
        web_sender(http, clock).send(subscription, push())

    assert raised.value.code == "webpush.connect"
    assert not isinstance(raised.value, SendOutcomeUnknown)
    assert SUBSCRIPTION_PATH not in _text(raised.value)


def test_no_key_or_endpoint_in_logs_errors_or_reprs(
    serve: Serve, http: httpx.Client, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    echo = f"no subscription at {SUBSCRIPTION_PATH}".encode()
    gone, _ = push_service(serve, clock, Reply(410, echo, (("Content-Type", "text/plain"),)))
    sender = web_sender(http, clock)

    with caplog.at_level(logging.DEBUG), pytest.raises(PushGone) as raised:
        sender.send(target(gone), push())

    origin = gone.url.removesuffix(SUBSCRIPTION_PATH)
    assert f"HTTP Request: POST {origin}/<redacted>" in caplog.text
    assert raised.value.reason == "HTTP 410 Gone: no subscription at <redacted>"
    secrets = [SUBSCRIPTION_PATH, "SubscriptionCapabilityToken", VAPID_RAW, b64url(AUTH)]
    secrets += VAPID_PEM.splitlines()[1:-1]
    for text in (caplog.text, _text(raised.value), repr(sender), repr(target(gone))):
        assert not [secret for secret in secrets if secret in text]
    assert [r.getMessage() for r in caplog.records if r.name == "cartback.channels.webpush"] == [
        "webpush.send_failed"
    ]


# --- Firebase Cloud Messaging ---------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Fcm:
    """Both FCM stand-ins and a sender wired to them."""

    def __init__(
        self,
        serve: Serve,
        http: httpx.Client,
        clock: ManualClock,
        samples_dir: Path,
        *,
        key: rsa.RSAPrivateKey,
        replies: dict[str, Reply] | None = None,
        token_delay: float = 0.0,
        timeout: httpx.Timeout | None = None,
        known_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        self.tokens = TokenEndpoint((known_key or key).public_key(), clock, token_delay)
        self.token_server = serve(self.tokens, path="/token")
        self.endpoint = FcmEndpoint(self.tokens, samples_dir, replies or {})
        self.send_server = serve(self.endpoint, path=SEND_PATH)
        options: dict[str, Any] = {"timeout": timeout} if timeout else {}
        self.sender = FcmSender(
            PROJECT,
            service_account(key),
            token_url=self.token_server.url,
            send_url=self.send_server.url,
            client=http,
            clock=clock,
            **options,
        )


MakeFcm = Callable[..., Fcm]


@pytest.fixture
def make_fcm(
    serve: Serve,
    http: httpx.Client,
    clock: ManualClock,
    samples_dir: Path,
    rsa_key: rsa.RSAPrivateKey,
) -> MakeFcm:
    """``make_fcm(replies=..., token_delay=..., timeout=..., key=..., known_key=...)``."""
    return functools.partial(Fcm, serve, http, clock, samples_dir, key=rsa_key)


@pytest.fixture
def fcm(make_fcm: MakeFcm) -> Fcm:
    return make_fcm()


def test_fcm_gets_a_token_and_sends_the_sample_shape(
    fcm: Fcm, samples_dir: Path, clock: ManualClock
) -> None:
    result = fcm.sender.send(DEVICE, push(ttl_seconds=3600))

    assert (result.provider, result.provider_message_id) == (
        "fcm",
        "projects/myproject-b5ae1/messages/0:1500415314455276%31bd1c9631bd1c96",
    )
    [token_request] = fcm.token_server.received
    assert headers_of(token_request)["content-type"] == "application/x-www-form-urlencoded"
    [request] = fcm.send_server.received
    assert headers_of(request)["authorization"] == "Bearer ya29.c.test-access-token-1"
    expected = json.loads((samples_dir / "fcm_v1_send_request.json").read_text())
    message = expected["message"]
    message["token"] = DEVICE
    message["notification"]["body"] = "Blue Hoodie (M) is still in your cart. Grüße 🛒"
    message["data"] = {
        "message_id": "msg-41",
        "recover_url": "https://shop.example.com/r/Ab3dE9",
        "type": "abandoned_cart",
    }
    message["android"]["ttl"] = "3600s"
    message["apns"]["headers"]["apns-expiration"] = str(int(clock.now().timestamp()) + 3600)
    message["webpush"]["headers"]["TTL"] = "3600"
    assert json.loads(request.body) == expected


def test_an_empty_token_is_refused_and_nothing_is_sent(fcm: Fcm) -> None:
    with pytest.raises(PermanentSendError) as raised:
        fcm.sender.send(" ", push())

    assert raised.value.code == "fcm.invalid_token"
    assert (fcm.token_server.received, fcm.send_server.received) == ([], [])


def test_one_token_serves_many_sends_until_shortly_before_it_expires(
    fcm: Fcm, clock: ManualClock
) -> None:
    fcm.sender.send(DEVICE, push())
    clock.advance(timedelta(seconds=3599 - 301))
    fcm.sender.send(DEVICE, push())

    assert len(fcm.token_server.received) == 1
    clock.advance(timedelta(seconds=2))  # now within 5 minutes of expiry
    fcm.sender.send(DEVICE, push())

    assert len(fcm.token_server.received) == 2
    bearers = [headers_of(r)["authorization"] for r in fcm.send_server.received]
    assert bearers == ["Bearer ya29.c.test-access-token-1"] * 2 + [
        "Bearer ya29.c.test-access-token-2"
    ]


def test_concurrent_sends_fetch_one_token(
    make_fcm: MakeFcm,
) -> None:
    fcm = make_fcm(token_delay=0.2)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: fcm.sender.send(DEVICE, push()), range(6)))

    assert len(results) == 6
    assert len(fcm.token_server.received) == 1
    assert len(fcm.send_server.received) == 6


def test_a_refused_access_token_is_dropped_and_the_send_retried_once(fcm: Fcm) -> None:
    fcm.sender.send(DEVICE, push())
    fcm.tokens.revoked.add("ya29.c.test-access-token-1")

    result = fcm.sender.send(DEVICE, push())

    assert result.provider == "fcm"
    assert len(fcm.token_server.received) == 2
    bearers = [headers_of(r)["authorization"] for r in fcm.send_server.received]
    assert bearers == [
        "Bearer ya29.c.test-access-token-1",
        "Bearer ya29.c.test-access-token-1",
        "Bearer ya29.c.test-access-token-2",
    ]


def test_a_second_401_is_permanent_after_one_retry(fcm: Fcm) -> None:
    fcm.tokens.refuse_all = True

    with pytest.raises(PermanentSendError) as raised:
        fcm.sender.send(DEVICE, push())

    assert raised.value.code == "fcm.http_401"
    assert len(fcm.token_server.received) == 2
    assert len(fcm.send_server.received) == 2


def test_third_party_auth_error_is_permanent_without_a_new_token(
    make_fcm: MakeFcm,
) -> None:
    replies = {DEVICE: fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")}
    fcm = make_fcm(replies=replies)

    with pytest.raises(PermanentSendError) as raised:
        fcm.sender.send(DEVICE, push())

    assert raised.value.code == "fcm.THIRD_PARTY_AUTH_ERROR"
    assert (len(fcm.token_server.received), len(fcm.send_server.received)) == (1, 1)


@pytest.fixture
def fcm_errors(
    make_fcm: MakeFcm,
) -> Fcm:
    """Registration tokens ``device-<answer>`` named after the answer they get."""
    fcm = make_fcm()
    fcm.endpoint.replies.update(
        {
            "device-unregistered": fcm.endpoint.sample_error("unregistered_token"),
            "device-invalid": fcm.endpoint.sample_error("invalid_token"),
            "device-internal": fcm.endpoint.sample_error("internal"),
            "device-quota": fcm_error(
                429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", ("Retry-After", "45")
            ),
            "device-unavailable": fcm_error(
                503, "UNAVAILABLE", "UNAVAILABLE", ("Retry-After", "10")
            ),
            "device-mismatch": fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
            "device-bare-502": Reply(
                502, b"<html>Bad Gateway</html>", (("Content-Type", "text/html"),)
            ),
            "device-no-name": json_reply(200, {}),
        }
    )
    return fcm


def test_an_unregistered_token_says_delete_it(fcm_errors: Fcm) -> None:
    with pytest.raises(PushGone) as raised:
        fcm_errors.sender.send("device-unregistered", push())

    assert (raised.value.code, raised.value.reason) == (
        "fcm.UNREGISTERED",
        "Requested entity was not found.",
    )


def test_an_invalid_token_is_permanent_and_names_the_field(fcm_errors: Fcm) -> None:
    with pytest.raises(PermanentSendError) as raised:
        fcm_errors.sender.send("device-invalid", push())

    assert not isinstance(raised.value, PushGone)
    assert (raised.value.code, raised.value.reason) == (
        "fcm.INVALID_ARGUMENT",
        "Request contains an invalid argument. (message.token: Invalid registration token)",
    )


def test_a_404_without_unregistered_does_not_say_delete(
    make_fcm: MakeFcm, http: httpx.Client, clock: ManualClock, rsa_key: rsa.RSAPrivateKey
) -> None:
    fcm = make_fcm()
    wrong_project = FcmSender(
        "another-project",
        service_account(rsa_key),
        token_url=fcm.token_server.url,
        send_url=fcm.send_server.url.replace(PROJECT, "another-project"),
        client=http,
        clock=clock,
    )

    with pytest.raises(PermanentSendError) as raised:
        wrong_project.send(DEVICE, push())

    assert not isinstance(raised.value, PushGone)
    assert raised.value.code == "fcm.http_404"


@pytest.mark.parametrize(
    ("device", "code", "retry"),
    [
        ("device-quota", "fcm.QUOTA_EXCEEDED", 45.0),
        ("device-unavailable", "fcm.UNAVAILABLE", 10.0),
        ("device-internal", "fcm.INTERNAL", None),
        ("device-bare-502", "fcm.http_502", None),
    ],
)
def test_quota_and_server_errors_are_transient(
    fcm_errors: Fcm, device: str, code: str, retry: float | None
) -> None:
    with pytest.raises(TransientSendError) as raised:
        fcm_errors.sender.send(device, push())

    assert (raised.value.code, raised.value.retry_after) == (code, retry)
    assert not isinstance(raised.value, SendOutcomeUnknown)


def test_sender_id_mismatch_is_permanent(fcm_errors: Fcm) -> None:
    with pytest.raises(PermanentSendError) as raised:
        fcm_errors.sender.send("device-mismatch", push())

    assert raised.value.code == "fcm.SENDER_ID_MISMATCH"


def test_200_without_a_name_is_unknown(fcm_errors: Fcm) -> None:
    with pytest.raises(SendOutcomeUnknown) as raised:
        fcm_errors.sender.send("device-no-name", push())

    assert raised.value.code == "fcm.bad_response"


def test_send_timeout_is_unknown(
    make_fcm: MakeFcm,
) -> None:
    fcm = make_fcm(
        replies={DEVICE: Reply(200, b'{"name":"projects/p/messages/1"}', delay=5.0)},
        timeout=httpx.Timeout(0.3, connect=1.0),
    )

    with pytest.raises(SendOutcomeUnknown) as raised:
        fcm.sender.send(DEVICE, push())

    assert raised.value.code == "fcm.timeout_after_send"
    assert len(fcm.send_server.received) == 1


def test_a_key_google_does_not_know_is_invalid_grant_and_nothing_is_sent(
    make_fcm: MakeFcm, rsa_key: rsa.RSAPrivateKey
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fcm = make_fcm(key=other_key, known_key=rsa_key)

    with pytest.raises(PermanentSendError) as raised:
        fcm.sender.send(DEVICE, push())

    assert (raised.value.code, raised.value.reason) == (
        "fcm.token_invalid_grant",
        "Invalid JWT Signature.",
    )
    assert fcm.send_server.received == []


@pytest.mark.parametrize(
    ("reply", "code", "retry"),
    [
        (
            json_reply(503, {"error": "backend_error"}, ("Retry-After", "5")),
            "fcm.token_http_503",
            5.0,
        ),
        (json_reply(400, {"error": "invalid_request"}), "fcm.token_http_400", None),
        (json_reply(200, {"token_type": "Bearer"}), "fcm.token_bad_response", None),
    ],
)
def test_other_token_endpoint_failures_are_transient_and_nothing_is_sent(
    make_fcm: MakeFcm,
    reply: Reply,
    code: str,
    retry: float | None,
) -> None:
    fcm = make_fcm()
    fcm.token_server.answer = lambda request: reply

    with pytest.raises(TransientSendError) as raised:
        fcm.sender.send(DEVICE, push())

    assert (raised.value.code, raised.value.retry_after) == (code, retry)
    assert fcm.send_server.received == []


def test_a_token_endpoint_timeout_is_plainly_transient(
    make_fcm: MakeFcm,
) -> None:
    fcm = make_fcm(
        token_delay=5.0,
        timeout=httpx.Timeout(0.3, connect=1.0),
    )

    with pytest.raises(TransientSendError) as raised:
        fcm.sender.send(DEVICE, push())

    assert raised.value.code == "fcm.token_timeout"
    assert not isinstance(raised.value, SendOutcomeUnknown)  # no message was sent
    assert fcm.send_server.received == []


def test_no_key_token_or_assertion_in_logs_errors_or_reprs(
    fcm_errors: Fcm, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        fcm_errors.sender.send(DEVICE, push())
        with pytest.raises(PermanentSendError) as raised:
            fcm_errors.sender.send("device-invalid", push())

    [token_request] = fcm_errors.token_server.received
    assertion = parse_qs(token_request.body.decode())["assertion"][0]
    secrets = ["ya29.c.test-access-token", assertion, DEVICE]
    secrets += service_account(rsa_key)["private_key"].splitlines()[1:-1]
    for text in (caplog.text, _text(raised.value), repr(fcm_errors.sender)):
        assert not [secret for secret in secrets if secret in text]
    assert [r.getMessage() for r in caplog.records if r.name == "cartback.channels.fcm"] == [
        "fcm.send_failed"
    ]
