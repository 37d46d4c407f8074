"""Every channel in one journey, under one contact policy, against stand-in providers and
the real SMTP server: "SMS at 30 min; email at 1 h if SMS was not possible; WhatsApp at
24 h; email at 72 h". The clock is moved, never waited for."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.channels.inbound.twilio import signature as twilio_signature
from cartback.content.sms import encode_info
from cartback.core.clock import ManualClock
from support.factories import (
    StoreKeys,
    advance,
    cart_updated,
    item,
    make_store,
    order_placed,
    post_events,
    use_flow,
)
from support.smtp import SmtpSink
from support.stand_in import Received, Reply, Serve, StandIn

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ACCOUNT_SID = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
AUTH_TOKEN = "twilio-auth-token"
FROM = "+14155550000"
# Twilio's test numbers: this one answers 21610 (the recipient replied STOP before)
UNSUBSCRIBED = "+14155550111"
# WhatsApp answers 131047 (re-engagement required) for this one
NOT_ENGAGED = "14155550006"

FLOW = {
    "name": "Every channel",
    "steps": [
        {"after": "30m", "channels": ["sms"], "template": "reminder"},
        {"after": "1h", "channel": "email", "condition": "previous_not_sent"},
        {
            "after": "24h",
            "channels": ["whatsapp", "email"],
            "template": "help",
            "whatsapp_template": "cart_help",
        },
        {"after": "72h", "channel": "email", "template": "last_chance"},
    ],
}


@dataclass
class Providers:
    twilio: StandIn
    whatsapp: StandIn

    def sms_to(self) -> list[dict[str, str]]:
        return [dict(parse_qsl(r.body.decode())) for r in self.twilio.received]

    def whatsapp_to(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.whatsapp.received]


@pytest.fixture
def providers(serve: Serve, samples_dir: Path) -> Providers:
    sample = json.loads((samples_dir / "twilio_message_create_response.json").read_text())
    sent = iter(range(1, 10**6))

    def twilio(request: Received) -> Reply:
        form = dict(parse_qsl(request.body.decode()))
        if form["To"] == UNSUBSCRIBED:
            body = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
            return Reply(400, json.dumps({**body, "status": 400}).encode())
        answer = {**sample, "sid": f"SM{next(sent):032d}", "to": form["To"], "body": form["Body"]}
        return Reply(201, json.dumps(answer).encode())

    wa_sample = (samples_dir / "whatsapp_send_response.json").read_bytes()

    def whatsapp(request: Received) -> Reply:
        if json.loads(request.body)["to"] == NOT_ENGAGED:
            error = {"message": "Re-engagement message", "type": "OAuthException", "code": 131047}
            return Reply(400, json.dumps({"error": error}).encode())
        return Reply(200, wa_sample)

    return Providers(serve(twilio), serve(whatsapp))


@pytest.fixture
def shop(
    runtime: Runtime, clock: ManualClock, smtp_sink: SmtpSink, providers: Providers
) -> StoreKeys:
    keys = make_store(
        runtime,
        clock,
        name="Acme",
        country="US",
        timezone="America/New_York",
        smtp_url=smtp_sink.url,
        channels={
            "sms": {
                "provider": "twilio",
                "twilio": {
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "api_base_url": providers.twilio.url,
                },
                "from_number": FROM,
                "rate_per_second": 100,
                "burst": 10,
            },
            "whatsapp": {
                "phone_number_id": "106540352242922",
                "access_token": "wa-token",
                "api_base_url": providers.whatsapp.url,
            },
        },
        costs={"sms_segment": {"US": "0.0079", "default": "0.05"}, "whatsapp_message": "0.025"},
    )
    use_flow(runtime, clock, keys, FLOW)
    return keys


def shopper(
    *,
    at: Any,
    cart_id: str = "cart-1",
    email: str = "ann@example.com",
    phone: str = "(415) 555-0142",
    timezone: str = "America/Los_Angeles",
    consent: dict[str, bool] | None = None,
) -> dict[str, Any]:
    return cart_updated(
        cart_id,
        at=at,
        email=email,
        items=[item(name="Trail runner", price=12900)],
        phone=phone,
        timezone=timezone,
        consent={"sms": True, "whatsapp": True} if consent is None else consent,
        consent_source="checkout checkbox",
        consent_proof={"ip": "203.0.113.9", "text": "Text me about my cart"},
    )


def cart(client: TestClient, keys: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
    response = client.get(f"/v1/carts/{cart_id}", headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decisions(body: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The journey's decisions: (kind, step, reason or channel)."""
    wanted = ("step.", "message.", "flow.")
    return [
        (t["kind"], t.get("step"), t.get("reason") or t.get("channel") or t.get("next"))
        for t in body["timeline"]
        if t["kind"].startswith(wanted)
    ]


def test_the_whole_journey_sms_then_whatsapp_then_a_purchase_stops_it(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
    smtp_sink: SmtpSink,
) -> None:
    start = clock.now() + 8 * HOUR  # 09:00 in Los Angeles: no quiet hours in the way
    clock.set(start)
    post_events(client, shop, shopper(at=start))
    advance(runtime, clock, 30 * MINUTE)  # abandoned
    advance(runtime, clock, 30 * MINUTE)  # step 1: SMS

    [sms] = providers.sms_to()
    assert sms["To"] == "+14155550142" and sms["From"] == FROM  # E.164 from the US default
    assert sms["Body"].startswith("Acme")
    assert re.search(r"http://cartback\.test/s/[A-Za-z0-9_-]{22}", sms["Body"])
    assert "STOP" in sms["Body"]
    assert encode_info(sms["Body"]).segments <= 2

    advance(runtime, clock, 30 * MINUTE)  # step 2 (1 h): email only if SMS was not possible
    assert smtp_sink.received == []

    advance(runtime, clock, 23 * HOUR)  # step 3 (24 h): WhatsApp template
    [wa] = providers.whatsapp_to()
    assert wa["to"] == "14155550142"
    assert wa["template"]["name"] == "cart_help"
    body = cart(client, shop)
    sent = {(m["step"], m["channel"]): m for m in body["messages"]}
    assert sent[(0, "sms")]["status"] == "sent"
    assert sent[(0, "sms")]["segments"] == encode_info(sms["Body"]).segments
    assert sent[(0, "sms")]["cost_micros"] == 7900 * sent[(0, "sms")]["segments"]
    assert sent[(2, "whatsapp")]["cost_micros"] == 25000

    post_events(client, shop, order_placed(at=clock.now(), total=12900))
    advance(runtime, clock, 48 * HOUR)  # step 4 (72 h) never comes
    assert smtp_sink.received == []
    assert decisions(cart(client, shop)) == [
        ("flow.entered", None, None),
        ("message.sent", 0, "sms"),
        ("step.skipped", 1, "previous_step_sent"),
        ("message.sent", 2, "whatsapp"),
        ("flow.exited", None, "purchased"),
    ]


def test_without_sms_consent_the_email_step_goes_instead_and_says_why(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
    smtp_sink: SmtpSink,
) -> None:
    clock.set(clock.now() + 8 * HOUR)
    post_events(client, shop, shopper(at=clock.now(), consent={"sms": False}))
    advance(runtime, clock, HOUR)  # abandoned at 30 min; step 1 at 1 h
    advance(runtime, clock, 30 * MINUTE)

    assert providers.sms_to() == []
    assert len(smtp_sink.received) == 1
    timeline = cart(client, shop)["timeline"]
    [skipped] = [t for t in timeline if t["kind"] == "step.skipped"]
    assert skipped["step"] == 0
    assert skipped["reason"] == "no_channel_allowed"
    assert skipped["passed_over"] == {"sms": "consent_withdrawn"}


def test_quiet_hours_are_the_shoppers_own_in_two_timezones(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
) -> None:
    # Monday 09:00 UTC: 14:00 in Almaty (daytime), 01:00 in Los Angeles (night)
    start = clock.now()
    post_events(
        client,
        shop,
        shopper(
            at=start,
            cart_id="kz",
            email="aru@example.kz",
            phone="+77012345678",
            timezone="Asia/Almaty",
        ),
        shopper(at=start, cart_id="us", email="bob@example.com", phone="(415) 555-0199"),
    )
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 30 * MINUTE)

    assert [m["To"] for m in providers.sms_to()] == ["+77012345678"]
    deferred = [t for t in cart(client, shop, "us")["timeline"] if t["kind"] == "step.deferred"]
    assert [(d["step"], d["reason"], d["channel"]) for d in deferred] == [(0, "quiet_hours", "sms")]
    assert deferred[0]["until"] == "2026-01-05T09:00:00-08:00"  # 09:00 in Los Angeles

    advance(runtime, clock, 6 * HOUR)  # 08:00 in Los Angeles: still quiet
    assert len(providers.sms_to()) == 1
    advance(runtime, clock, HOUR)  # 09:00 there: deferred, never dropped
    assert [m["To"] for m in providers.sms_to()] == ["+77012345678", "+14155550199"]


def test_the_frequency_budget_skips_a_step_too_close_to_the_last_message(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
    smtp_sink: SmtpSink,
) -> None:
    use_flow(
        runtime,
        clock,
        shop,
        {"steps": [{"after": "30m", "channel": "sms"}, {"after": "2h", "channel": "email"}]},
    )
    clock.set(clock.now() + 8 * HOUR)
    post_events(client, shop, shopper(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 2 * HOUR)

    assert len(providers.sms_to()) == 1
    assert smtp_sink.received == []
    [skipped] = [t for t in cart(client, shop)["timeline"] if t["kind"] == "step.skipped"]
    assert (skipped["step"], skipped["reason"]) == (1, "frequency_cap")


@pytest.mark.parametrize(
    ("first", "phone", "code"),
    [
        ("sms", UNSUBSCRIBED, "twilio.21610"),  # the number replied STOP to Twilio before
        ("whatsapp", "(415) 555-0006", "whatsapp.131047"),  # re-engagement required
    ],
)
def test_a_permanent_failure_falls_back_to_the_steps_email_at_once(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
    smtp_sink: SmtpSink,
    first: str,
    phone: str,
    code: str,
) -> None:
    use_flow(runtime, clock, shop, {"steps": [{"after": "2h", "channels": [first, "email"]}]})
    clock.set(clock.now() + 8 * HOUR)
    post_events(client, shop, shopper(at=clock.now(), phone=phone))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, 2 * HOUR)

    assert len(providers.twilio.received) + len(providers.whatsapp.received) == 1
    assert len(smtp_sink.received) == 1
    body = cart(client, shop)
    by_channel = {m["channel"]: m for m in body["messages"]}
    assert (by_channel[first]["status"], by_channel[first]["error_code"]) == ("failed", code)
    assert by_channel[first]["cost_micros"] is None  # a refused send costs nothing
    assert by_channel["email"]["status"] == "sent"
    assert ("step.fallback", 0, "email") in decisions(body)
    assert body["reminders_sent"] == 1


# --- the whole story, as the issue tells it -----------------------------------------------------


def twilio_post(client: TestClient, store_id: str, kind: str, fields: dict[str, str]) -> Any:
    """A callback as Twilio sends it: form-encoded, signed over our public URL."""
    url = f"http://cartback.test/v1/callbacks/twilio/{store_id}/{kind}"
    params = {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", **fields}
    return client.post(
        url.removeprefix("http://cartback.test"),
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, params.items()),
        },
    )


def test_done_when_the_journey_runs_through_consent_quiet_hours_cap_stop_failure_and_purchase(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    shop: StoreKeys,
    providers: Providers,
    smtp_sink: SmtpSink,
) -> None:
    # Monday 09:00 UTC: 01:00 in Los Angeles (night), 14:00 in Almaty (day)
    start = clock.now()
    la, almaty = "America/Los_Angeles", "Asia/Almaty"
    post_events(
        client,
        shop,
        shopper(
            at=start, cart_id="ann", email="ann@example.com", phone="(415) 555-0142", timezone=la
        ),
        shopper(
            at=start, cart_id="dan", email="dan@example.com", phone="(415) 555-0143", timezone=la
        ),
        shopper(
            at=start, cart_id="aru", email="aru@example.kz", phone="+77012345678", timezone=almaty
        ),
        shopper(
            at=start, cart_id="cleo", email="cleo@example.kz", phone="+77012345679", timezone=almaty
        ),
        shopper(
            at=start,
            cart_id="bob",
            email="bob@example.com",
            phone="(415) 555-0144",
            timezone=almaty,
        ),
    )
    post_events(  # Bob withdraws his SMS consent before anything was sent
        client,
        shop,
        {
            "id": "bob-out",
            "type": "contact.identified",
            "occurred_at": start.isoformat(),
            "contact": {"email": "bob@example.com", "consent": {"sms": False}},
        },
    )
    advance(runtime, clock, 30 * MINUTE)  # 09:30: every cart abandoned
    advance(runtime, clock, 5 * MINUTE)
    # Cleo comes back with a new cart: it replaces her journey and will be abandoned too
    post_events(
        client,
        shop,
        shopper(
            at=clock.now(),
            cart_id="cleo-2",
            email="cleo@example.kz",
            phone="+77012345679",
            timezone=almaty,
        ),
    )
    advance(runtime, clock, 25 * MINUTE)  # 10:00: SMS step of the first journeys

    assert {m["To"] for m in providers.sms_to()} == {"+77012345678", "+77012345679"}
    # Aru's SMS is accepted, then reported undelivered (30003: handset unreachable)
    aru_sid = twilio_sids(providers)["+77012345678"]
    response = twilio_post(
        client,
        shop.id,
        "status",
        {
            "MessageSid": aru_sid,
            "MessageStatus": "undelivered",
            "ErrorCode": "30003",
            "To": "+77012345678",
            "From": FROM,
        },
    )
    assert response.status_code == 200, response.text
    # Dan texts STOP while his reminder waits for the morning in Los Angeles
    stop = twilio_post(
        client,
        shop.id,
        "inbound",
        {"MessageSid": "SM" + "d" * 32, "From": "+14155550143", "To": FROM, "Body": "STOP"},
    )
    assert stop.status_code == 200 and "<Message>" in stop.text

    advance(runtime, clock, 30 * MINUTE)  # 10:30: the 1 h email steps
    advance(runtime, clock, 30 * MINUTE)  # 11:00: Cleo's new cart reaches its SMS step
    advance(runtime, clock, 30 * MINUTE)  # 11:30: ... and its email step
    advance(runtime, clock, 6 * HOUR)  # 17:30, 09:30 in Los Angeles: the deferred SMS steps
    advance(runtime, clock, 30 * MINUTE)

    assert sorted(m["To"] for m in providers.sms_to()) == [
        "+14155550142",  # Ann, in her morning
        "+77012345678",  # Aru (undelivered)
        "+77012345679",  # Cleo's first cart
    ]
    assert sorted(m["To"].addresses[0].addr_spec for m in smtp_sink.received) == [
        "aru@example.kz",  # the SMS did not reach her: the 1 h email did
        "bob@example.com",  # no SMS consent: email instead
        "dan@example.com",  # STOP: email instead
    ]

    advance(runtime, clock, 16 * HOUR)  # Tuesday 10:00 UTC: 24 h WhatsApp steps
    advance(runtime, clock, 7 * HOUR)  # 09:00 in Los Angeles
    assert "14155550142" in {m["to"] for m in providers.whatsapp_to()}
    post_events(client, shop, order_placed("o-ann", at=clock.now(), cart_id="ann", total=12900))
    advance(runtime, clock, 3 * 24 * HOUR)  # the 72 h step never comes for Ann

    assert decisions(cart(client, shop, "ann")) == [
        ("flow.entered", None, None),
        ("step.deferred", 0, "quiet_hours"),
        ("message.sent", 0, "sms"),
        ("step.skipped", 1, "previous_step_sent"),
        ("step.deferred", 2, "quiet_hours"),
        ("message.sent", 2, "whatsapp"),
        ("flow.exited", None, "purchased"),
    ]
    assert decisions(cart(client, shop, "dan"))[:4] == [
        ("flow.entered", None, None),
        ("step.deferred", 0, "quiet_hours"),
        ("step.skipped", 0, "no_channel_allowed"),
        ("message.sent", 1, "email"),
    ]
    dan = cart(client, shop, "dan")["timeline"]
    assert next(t["passed_over"] for t in dan if t["kind"] == "step.skipped") == {
        "sms": "stop_keyword"
    }
    assert decisions(cart(client, shop, "aru"))[:5] == [
        ("flow.entered", None, None),
        ("message.sent", 0, "sms"),
        ("message.failed", 0, "undelivered: unreachable destination handset (Twilio error 30003)"),
        ("step.skipped", 0, "no_channel_allowed"),  # the fallback: no other channel
        ("message.sent", 1, "email"),
    ]
    aru_sms = next(m for m in cart(client, shop, "aru")["messages"] if m["channel"] == "sms")
    assert (aru_sms["status"], aru_sms["error_code"]) == ("failed", "twilio.30003")
    bob = cart(client, shop, "bob")["timeline"]
    assert next(t.get("passed_over") for t in bob if t["kind"] == "step.skipped") == {
        "sms": "consent_withdrawn"
    }
    assert decisions(cart(client, shop, "cleo-2"))[:3] == [
        ("flow.entered", None, None),
        ("step.skipped", 0, "frequency_cap"),  # Cleo's first SMS was an hour ago
        ("step.skipped", 1, "frequency_cap"),
    ]
    assert cart(client, shop, "cleo")["journeys"][0]["exit_reason"] == "newer_cart"


def twilio_sids(providers: Providers) -> dict[str, str]:
    """The message SID the stand-in gave each recipient (in order of sending)."""
    sids = {}
    for index, request in enumerate(providers.twilio.received, start=1):
        sids[dict(parse_qsl(request.body.decode()))["To"]] = f"SM{index:032d}"
    return sids
