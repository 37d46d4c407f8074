"""No callback body, however odd, gets a 5xx, even when it is signed correctly: every
refusal is a 4xx problem naming what is wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.callbacks._email_api import certificate_fetcher, subscription_confirmer
from cartback.core.clock import ManualClock
from support.callback_samples import (
    MAILGUN_KEY,
    mailgun_time,
    sendgrid_headers,
    ses_envelope,
    sns_certificate_pem,
)
from support.callback_world import (
    APP_SECRET,
    AUTH_TOKEN,
    BASE,
    PROBLEM,
    TG_SECRET,
    TOPIC,
    callback_store,
)
from support.factories import StoreKeys

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = [
    "object", "entry", "changes", "value", "statuses", "id", "status", "errors", "code",
    "update_id", "message", "chat", "type", "text", "from", "callback_query", "data",
    "event", "email", "timestamp", "sg_message_id", "smtp-id", "RecordType", "Type", "Email",
    "Recipient", "MessageID", "BouncedAt", "SuppressSending", "event-data", "severity",
    "recipient", "eventType", "notificationType", "bounce", "bounceType", "bouncedRecipients",
    "emailAddress", "complaint", "complainedRecipients", "delivery", "recipients", "mail",
    "messageId", "headers", "name",
]  # fmt: skip
VALUES = [
    "whatsapp_business_account", "failed", "delivered", "read", "private", "/start abc",
    "optout:cart", "bounce", "spamreport", "Bounce", "HardBounce", "SpamComplaint",
    "Complaint", "Permanent", "permanent", "a@b.test", "A@B.TEST", "Message-ID", "\u0000",
    "\ud800", "x" * 400 + "@b.test", "2019-11-05T16:33:54.9070259Z",
]  # fmt: skip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=25,
)


@pytest.fixture
def shop(runtime: Runtime, clock: ManualClock) -> StoreKeys:
    return callback_store(runtime, clock)


@pytest.fixture
def sns(client: TestClient) -> Iterator[None]:
    overrides: dict[Callable[..., Any], Callable[..., Any]] = client.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[certificate_fetcher] = lambda: lambda url: sns_certificate_pem()
    overrides[subscription_confirmer] = lambda: lambda url: None
    yield
    overrides.clear()


def refused_well(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"]


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


@FUZZ
@given(value=json_values)
def test_signed_whatsapp_bodies(client: TestClient, shop: StoreKeys, value: Any) -> None:
    body = encode(value)
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()

    refused_well(
        client.post(
            f"/v1/callbacks/whatsapp/{shop.id}",
            content=body,
            headers={"X-Hub-Signature-256": signature},
        )
    )


@FUZZ
@given(value=json_values)
def test_telegram_bodies(client: TestClient, shop: StoreKeys, value: Any) -> None:
    response = client.post(
        f"/v1/callbacks/telegram/{shop.id}",
        content=encode(value),
        headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
    )

    refused_well(response)


@FUZZ
@given(value=json_values)
def test_signed_sendgrid_bodies(client: TestClient, shop: StoreKeys, value: Any) -> None:
    body = encode(value)

    refused_well(
        client.post(
            f"/v1/callbacks/email/sendgrid/{shop.id}", content=body, headers=sendgrid_headers(body)
        )
    )


@FUZZ
@given(value=json_values)
def test_postmark_bodies(client: TestClient, shop: StoreKeys, value: Any) -> None:
    token = base64.b64encode(b"hook:p4ss word").decode()

    refused_well(
        client.post(
            f"/v1/callbacks/email/postmark/{shop.id}",
            content=encode(value),
            headers={"Authorization": f"Basic {token}"},
        )
    )


@FUZZ
@given(value=json_values)
def test_signed_mailgun_event_data(
    client: TestClient, clock: ManualClock, shop: StoreKeys, value: Any
) -> None:
    stamp, token = "1705376380", "d7be371deef49c8b187119df295e3eb17fd1974d513a4be2cb"
    signature = hmac.new(MAILGUN_KEY.encode(), (stamp + token).encode(), hashlib.sha256)
    body = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature.hexdigest()},
        "event-data": value,
    }
    clock.set(mailgun_time(body))

    refused_well(client.post(f"/v1/callbacks/email/mailgun/{shop.id}", content=encode(body)))


@FUZZ
@given(value=json_values)
def test_signed_ses_messages(client: TestClient, shop: StoreKeys, sns: None, value: Any) -> None:
    envelope = ses_envelope(value, TOPIC)  # a signed notification whose Message is anything

    refused_well(client.post(f"/v1/callbacks/email/ses/{shop.id}", content=encode(envelope)))


form_params = st.lists(
    st.tuples(
        st.sampled_from(["MessageSid", "MessageStatus", "ErrorCode", "From", "Body", "OptOutType"])
        | st.text(max_size=6),
        st.sampled_from(["SM1", "STOP", "start", "failed", "30003", "+14155552345", "HELP"])
        | st.text(max_size=30),
    ),
    max_size=6,
)


@FUZZ
@given(params=form_params, kind=st.sampled_from(["status", "inbound"]))
def test_signed_twilio_forms(
    client: TestClient, shop: StoreKeys, params: list[tuple[str, str]], kind: str
) -> None:
    url = f"{BASE}/v1/callbacks/twilio/{shop.id}/{kind}"
    body = urlencode(params)
    signed = url + "".join(k + v for k, v in sorted(set(params)))
    digest = hmac.new(AUTH_TOKEN.encode(), signed.encode("utf-8", "surrogatepass"), hashlib.sha1)

    refused_well(
        client.post(
            url,
            content=body.encode("utf-8", "surrogatepass"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": base64.b64encode(digest.digest()).decode(),
            },
        )
    )


@FUZZ
@given(raw=st.binary(max_size=200), path=st.sampled_from(
    ["twilio/{}/status", "whatsapp/{}", "telegram/{}", "email/ses/{}", "email/mailgun/{}"]
))  # fmt: skip
def test_unsigned_bytes_anywhere(
    client: TestClient, shop: StoreKeys, raw: bytes, path: str
) -> None:
    refused_well(client.post(f"/v1/callbacks/{path.format(shop.id)}", content=raw))
