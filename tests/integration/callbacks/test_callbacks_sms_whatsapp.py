"""Twilio and WhatsApp callbacks end to end, on the real database and app: what a verified
callback changes, that a replay changes nothing more, and that a forged one changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.contacts.models import Suppression
from cartback.content import ShortRenderer
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from support.callback_samples import (
    http_sample,
)
from support.callback_world import (
    APP_SECRET,
    AUTH_TOKEN,
    BASE,
    CHANNELS,
    DELIVERED_SID,
    PHONE,
    WA_DELIVERED,
    WA_FAILED,
    Seeded,
    add_contact,
    consents,
    message,
    problem,
    seed,
    state,
    suppressions,
)
from support.factories import StoreKeys, make_store

# --- Twilio ---------------------------------------------------------------------------------


def twilio_url(store: StoreKeys, kind: str) -> str:
    return f"{BASE}/v1/callbacks/twilio/{store.id}/{kind}"


def twilio_signature(url: str, params: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """Twilio's definition, written out here independently of the code under test."""
    payload = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(
        hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()


def post_twilio(
    client: TestClient,
    store: StoreKeys,
    kind: str,
    params: list[tuple[str, str]],
    *,
    signature: str | None = None,
    query: str = "",
) -> Any:
    url = twilio_url(store, kind) + (f"?{query}" if query else "")
    return client.post(
        url,
        content=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature or twilio_signature(url, params),
        },
    )


def sample_params(name: str, **changes: str) -> list[tuple[str, str]]:
    params = parse_qsl(http_sample(name).body.decode(), keep_blank_values=True)
    return [(k, changes.pop(k, v)) for k, v in params] + list(changes.items())


def sms_message(runtime: Runtime, clock: ManualClock, store: StoreKeys, **kw: Any) -> Seeded:
    return seed(
        runtime, clock, store, channel="sms", provider="twilio",
        provider_message_id=kw.pop("sid", DELIVERED_SID), to_address=PHONE, **kw,
    )  # fmt: skip


def test_delivered_marks_the_message_delivered_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    seeded = sms_message(runtime, clock, shop)
    clock.advance(timedelta(minutes=2))
    params = sample_params("twilio_status_callback_delivered")

    response = post_twilio(client, shop, "status", params)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    delivered = message(runtime, seeded.message_id)
    assert (delivered.status, delivered.delivered_at) == ("delivered", clock.now())
    after = state(runtime)
    clock.advance(timedelta(minutes=1))
    assert post_twilio(client, shop, "status", params).status_code == 200
    assert state(runtime) == after


def test_the_signed_url_keeps_its_query_string(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    seeded = sms_message(runtime, clock, shop)

    response = post_twilio(
        client, shop, "status", sample_params("twilio_status_callback_delivered"), query="m=cart123"
    )

    assert response.status_code == 200, response.text
    assert message(runtime, seeded.message_id).status == "delivered"


def test_undelivered_fails_the_message_and_asks_for_the_next_channel_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    seeded = sms_message(runtime, clock, shop)
    params = sample_params("twilio_status_callback_undelivered")

    assert post_twilio(client, shop, "status", params).status_code == 200

    failed = message(runtime, seeded.message_id)
    assert (failed.status, failed.error_code, failed.error_reason) == (
        "failed",
        "twilio.30003",
        "undelivered: unreachable destination handset (Twilio error 30003)",
    )
    after = state(runtime)
    assert after["jobs"] == [("flow.fallback", f"fallback:{seeded.enrollment_id}:0")]
    assert post_twilio(client, shop, "status", params).status_code == 200
    assert post_twilio(client, shop, "status", sample_params(
        "twilio_status_callback_undelivered", MessageStatus="failed", ErrorCode="30008"
    )).status_code == 200  # fmt: skip
    assert state(runtime) == after


@pytest.mark.parametrize("late", ["sent", "queued", "failed", "undelivered"])
def test_a_status_never_moves_a_delivered_message_back(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, late: str
) -> None:
    seeded = sms_message(runtime, clock, shop, status="delivered")
    before = state(runtime)

    params = sample_params("twilio_status_callback_delivered", MessageStatus=late, SmsStatus=late)
    assert post_twilio(client, shop, "status", params).status_code == 200

    assert message(runtime, seeded.message_id).status == "delivered"
    assert state(runtime) == before


def test_a_status_for_a_message_we_did_not_send_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    other = make_store(runtime, clock, name="Other", channels=CHANNELS)
    sms_message(runtime, clock, other)  # the same sid, but another store's message
    before = state(runtime)

    params = sample_params("twilio_status_callback_undelivered")
    assert post_twilio(client, shop, "status", params).status_code == 200

    assert state(runtime) == before


def forgeries(url: str, params: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Headers of requests Twilio did not sign as they are: none, another token, another
    URL (a spoofed Host), another form, a garbled signature."""
    elsewhere = url.replace(BASE, "http://evil.test")
    return [
        {},
        {"X-Twilio-Signature": twilio_signature(url, params, "54321")},
        {"X-Twilio-Signature": twilio_signature(elsewhere, params)},
        {"X-Twilio-Signature": twilio_signature(url, [*params, ("X", "1")])},
        {"X-Twilio-Signature": twilio_signature(url, params)[:-4] + "AAA="},
    ]


@pytest.mark.parametrize("case", range(5))
def test_a_forged_status_is_403_and_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, case: int
) -> None:
    sms_message(runtime, clock, shop)
    params = sample_params("twilio_status_callback_undelivered")
    url = twilio_url(shop, "status")
    headers = forgeries(url, params)[case]
    before = state(runtime)

    response = client.post(
        url,
        content=urlencode(params).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )

    problem(response, 403, "invalid_signature")
    assert state(runtime) == before


def test_twilio_routes_need_a_known_store_with_twilio(
    client: TestClient, runtime: Runtime, clock: ManualClock, bare: StoreKeys
) -> None:
    params = sample_params("twilio_status_callback_delivered")
    unknown = StoreKeys("0" * 32, "", "")

    problem(post_twilio(client, unknown, "status", params), 404, "store_not_found")
    problem(post_twilio(client, bare, "status", params), 404, "channel_not_configured")
    problem(post_twilio(client, bare, "inbound", params), 404, "channel_not_configured")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ([("MessageStatus", "delivered")], 422, "missing_field"),
        (
            [("MessageSid", "SM1"), ("MessageStatus", "sent"), ("ErrorCode", "x")],
            422,
            "invalid_field",
        ),
    ],
)
def test_a_signed_but_malformed_status_is_a_4xx_naming_the_field(
    client: TestClient, shop: StoreKeys, params: list[tuple[str, str]], status: int, code: str
) -> None:
    body = problem(post_twilio(client, shop, "status", params), status, code)

    assert "MessageSid" in body["detail"] or "ErrorCode" in body["detail"]


def test_a_huge_body_is_413(client: TestClient, shop: StoreKeys) -> None:
    params = [("Body", "x" * 300_000)]

    problem(post_twilio(client, shop, "inbound", params), 413, "body_too_large")


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ([("MessageSid", "SM1"), ("From", "+1" * 40), ("Body", "STOP")], 422, "invalid_field"),
        (
            [("MessageSid", "SM1"), ("From", "+14155552345"), ("Body", "ST\x00OP")],
            400,
            "malformed_form",
        ),
        ([("MessageSid", "SM1"), ("Body", "STOP")], 422, "missing_field"),
    ],
)
def test_a_signed_but_malformed_inbound_message_writes_nothing(
    client: TestClient,
    runtime: Runtime,
    shop: StoreKeys,
    params: list[tuple[str, str]],
    status: int,
    code: str,
) -> None:
    before = state(runtime)

    problem(post_twilio(client, shop, "inbound", params), status, code)

    assert state(runtime) == before


def test_a_store_id_that_cannot_be_one_is_404(client: TestClient) -> None:
    problem(client.post("/v1/callbacks/telegram/ab%00cd", json={}), 404, "store_not_found")


# --- Twilio inbound keywords -------------------------------------------------------------


def inbound(body: str, sid: str = "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") -> list[tuple[str, str]]:
    params = sample_params("twilio_inbound_stop", Body=body, MessageSid=sid, SmsSid=sid)
    return [(k, v) for k, v in params if k not in ("OptOutType", "SmsMessageSid")]


def twiml_text(response: Any) -> str | None:
    import xml.etree.ElementTree as ET

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.text).findtext("Message")


def test_the_stop_sample_revokes_sms_consent_suppresses_and_confirms_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    params = sample_params("twilio_inbound_stop")

    response = post_twilio(client, shop, "inbound", params)

    assert twiml_text(response) == reply_to("stop")
    [consent] = consents(runtime, "sms")
    assert (consent.contact_id, consent.granted, consent.source, consent.occurred_at) == (
        "ann",
        False,
        "sms_keyword",
        clock.now(),
    )
    assert consent.proof == {
        "message_sid": "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "body": "STOP",
        "at": "2026-01-05T09:00:00Z",
    }
    assert suppressions(runtime) == {("sms", PHONE, "stop_keyword")}
    after = state(runtime)
    clock.advance(timedelta(minutes=5))
    assert twiml_text(post_twilio(client, shop, "inbound", params)) == twiml_text(response)
    assert state(runtime) == after


def test_start_after_stop_grants_consent_again_and_lifts_the_suppression(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    post_twilio(client, shop, "inbound", inbound("stop"))
    clock.advance(timedelta(days=1))

    response = post_twilio(client, shop, "inbound", inbound(" Yes ", sid="SMc2"))

    assert twiml_text(response) == reply_to("start")
    assert [(c.granted, c.source) for c in consents(runtime, "sms")] == [
        (False, "sms_keyword"),
        (True, "sms_keyword"),
    ]
    assert suppressions(runtime) == set()
    after = state(runtime)
    # the first STOP delivered again later changes nothing: it was handled already
    post_twilio(client, shop, "inbound", inbound("stop"))
    assert state(runtime) == after


def test_start_does_not_lift_a_suppression_of_another_kind(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    with transaction(runtime.sessions) as session:
        session.add(
            Suppression(
                id="s1", store_id=shop.id, channel="sms", address=PHONE, reason="erased",
                created_at=clock.now(),
            )
        )  # fmt: skip

    post_twilio(client, shop, "inbound", inbound("START"))

    assert suppressions(runtime) == {("sms", PHONE, "erased")}


def test_help_answers_the_stores_help_text_and_writes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    before = state(runtime)

    response = post_twilio(client, shop, "inbound", inbound("help"))

    assert (
        twiml_text(response) == "Acme Shoes: reminders about carts you left. Reply STOP to opt out."
    )
    assert state(runtime) == before


def test_another_message_gets_no_reply(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    before = state(runtime)

    response = post_twilio(client, shop, "inbound", inbound("where is my order?"))

    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert state(runtime) == before


def test_a_stores_own_stop_word_works(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)

    post_twilio(client, shop, "inbound", inbound("arrêt"))

    assert [c.granted for c in consents(runtime, "sms")] == [False]


def test_an_unknown_sender_is_suppressed_and_confirmed(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    other = make_store(runtime, clock, name="Other", channels=CHANNELS)
    add_contact(runtime, clock, other, "ann-elsewhere", PHONE)  # another store's shopper

    response = post_twilio(client, shop, "inbound", inbound("STOP"))

    assert twiml_text(response) == reply_to("stop")
    assert consents(runtime, "sms") == []
    assert state(runtime)["suppressions"] == [(shop.id, "sms", PHONE, "stop_keyword")]


def test_an_old_stop_replayed_after_a_start_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    post_twilio(client, shop, "inbound", inbound("STOP", sid="SMstop"))
    post_twilio(client, shop, "inbound", inbound("START", sid="SMstart"))
    after_start = state(runtime)

    response = post_twilio(client, shop, "inbound", inbound("STOP", sid="SMstop"))

    assert twiml_text(response) == reply_to("stop")  # answered the same, acted on once
    assert state(runtime) == after_start
    assert after_start["suppressions"] == []


def test_a_forged_stop_is_403_and_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    sample = http_sample("twilio_inbound_stop")
    before = state(runtime)

    # the sample as Twilio signed it for its own URL, replayed against ours
    response = client.post(
        twilio_url(shop, "inbound"),
        content=sample.body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sample.headers["X-Twilio-Signature"],
        },
    )

    problem(response, 403, "invalid_signature")
    assert state(runtime) == before


# --- WhatsApp -----------------------------------------------------------------------------


def whatsapp_url(store: StoreKeys) -> str:
    return f"/v1/callbacks/whatsapp/{store.id}"


def test_the_handshake_echoes_the_challenge(client: TestClient, shop: StoreKeys) -> None:
    query = urlsplit(http_sample("whatsapp_webhook_verification_request").target).query

    response = client.get(f"{whatsapp_url(shop)}?{query}")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "1158201444"


def test_a_handshake_with_another_token_is_403(
    client: TestClient, shop: StoreKeys, bare: StoreKeys
) -> None:
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess"

    problem(client.get(f"{whatsapp_url(shop)}?{query}"), 403, "invalid_token")
    problem(client.get(f"{whatsapp_url(shop)}?hub.mode=subscribe"), 422, "missing_field")
    problem(client.get(f"{whatsapp_url(bare)}?{query}"), 404, "channel_not_configured")


def whatsapp_messages(
    runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> tuple[Seeded, Seeded]:
    delivered = seed(
        runtime, clock, store, channel="whatsapp", provider="whatsapp",
        provider_message_id=WA_DELIVERED, to_address="16505076520",
    )  # fmt: skip
    failed = seed(
        runtime, clock, store, channel="whatsapp", provider="whatsapp",
        provider_message_id=WA_FAILED, to_address="16505076521", email="bo@example.com",
        phone="+16505076521", cart="cart-2",
    )  # fmt: skip
    return delivered, failed


def post_whatsapp(client: TestClient, store: StoreKeys, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(whatsapp_url(store), content=body, headers=headers)


def test_the_status_sample_delivers_one_message_and_fails_the_other_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    delivered, failed = whatsapp_messages(runtime, clock, shop)
    sample = http_sample("whatsapp_status_webhook_request")
    signature = sample.headers["X-Hub-Signature-256"]

    response = post_whatsapp(client, shop, sample.body, signature)

    assert response.status_code == 200, response.text
    assert response.json() == {"statuses": 2, "changed": 2}
    got = message(runtime, delivered.message_id)
    assert (got.status, got.delivered_at) == (
        "delivered",
        datetime(2025, 6, 18, 16, 22, 53, tzinfo=UTC),
    )
    got = message(runtime, failed.message_id)
    assert (got.status, got.error_code, got.error_reason) == (
        "failed",
        "whatsapp.131049",
        "This message was not delivered to maintain healthy ecosystem engagement.",
    )
    after = state(runtime)
    assert after["jobs"] == [("flow.fallback", f"fallback:{failed.enrollment_id}:0")]
    assert post_whatsapp(client, shop, sample.body, signature).json() == {
        "statuses": 2,
        "changed": 0,
    }
    assert state(runtime) == after


def test_a_read_status_counts_as_delivered(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    delivered, _ = whatsapp_messages(runtime, clock, shop)
    body = http_sample("whatsapp_status_webhook_request").body.replace(b'"delivered"', b'"read"')
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()

    assert post_whatsapp(client, shop, body, signature).status_code == 200

    assert message(runtime, delivered.message_id).status == "delivered"


@pytest.mark.parametrize("forgery", ["no header", "empty", "wrong", "tampered body"])
def test_a_forged_whatsapp_status_is_403_and_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, forgery: str
) -> None:
    whatsapp_messages(runtime, clock, shop)
    sample = http_sample("whatsapp_status_webhook_request")
    signed = sample.headers["X-Hub-Signature-256"]
    body, signature = {
        "no header": (sample.body, None),
        "empty": (sample.body, ""),
        "wrong": (sample.body, "sha256=" + "0" * 64),
        "tampered body": (sample.body.replace(b"failed", b"sent"), signed),
    }[forgery]
    before = state(runtime)

    response = post_whatsapp(client, shop, body, signature)

    problem(response, 403, "invalid_signature")
    assert state(runtime) == before


def test_a_signed_but_malformed_whatsapp_body_is_a_4xx(client: TestClient, shop: StoreKeys) -> None:
    for body, status, code in [
        (b"not json", 400, "malformed_json"),
        (b'{"object": "page"}', 422, "unexpected_object"),
        (b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": '
         b'{"statuses": [{"id": 5}]}}]}]}', 422, "invalid_field"),
    ]:  # fmt: skip
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        problem(post_whatsapp(client, shop, body, signature), status, code)


def reply_to(kind: Literal["stop", "start"]) -> str:
    """The built-in confirmation, in English (the store's language here)."""
    return ShortRenderer().keyword_reply(kind, "en", store_name="Acme Shoes")
