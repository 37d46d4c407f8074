"""Team alerts for valuable carts, push to registered devices, and what each channel cost,
against stand-in servers on loopback. The clock is moved, never waited for."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.channels import verify_signature
from cartback.core.clock import ManualClock
from support.callback_world import CHANNELS, button, post_telegram, start_token, update
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
from support.push_services import (
    AUTH,
    PROJECT,
    SEND_PATH,
    SUBJECT,
    SUBSCRIPTION_PATH,
    UA_KEY,
    VAPID_RAW,
    FcmEndpoint,
    PushService,
    TokenEndpoint,
    b64url,
    point,
    service_account,
)
from support.stand_in import Received, Reply, Serve

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SECRET = "team-alert-secret-0123456789"


def kinds(body: dict[str, Any]) -> list[str]:
    return [entry["kind"] for entry in body["timeline"]]


def cart_body(client: TestClient, keys: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
    response = client.get(f"/v1/carts/{cart_id}", headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- team alert ------------------------------------------------------------------------------


def test_a_valuable_abandoned_cart_becomes_a_signed_call_task_and_its_recovery_too(
    client: TestClient, runtime: Runtime, clock: ManualClock, serve: Serve
) -> None:
    answers = iter([Reply(503), Reply(200), Reply(200)])
    team = serve(lambda request: next(answers))
    keys = make_store(
        runtime,
        clock,
        channels={
            "team_alert": {
                "url": team.url,
                "secret": SECRET,
                "min_value": 10000,
                "on_recovery": True,
            }
        },
    )
    post_events(
        client,
        keys,
        cart_updated("big", at=clock.now(), items=[item(price=12900)], phone="+14155550142"),
        cart_updated("small", at=clock.now(), items=[item(price=5000)], email="bo@example.com"),
    )
    advance(runtime, clock, 30 * MINUTE)  # both abandoned; the webhook answers 503 first
    assert len(team.received) == 1
    advance(runtime, clock, 10 * MINUTE)  # the retry, after its backoff
    assert len(team.received) == 2

    request = team.received[1]
    body = json.loads(request.body)
    assert request.headers["X-Cartback-Event"] == "cart_abandoned"
    assert verify_signature(
        SECRET,
        request.headers["X-Cartback-Timestamp"],
        request.body,
        request.headers["X-Cartback-Signature"],
        now=clock.now(),
    )
    assert (body["cart_id"], body["cart_value"], body["value_text"]) == ("big", 12900, "$129.00")
    assert (body["contact_email"], body["contact_phone"]) == ("ann@example.com", "+14155550142")
    assert body["items"] == [{"name": "T-shirt", "quantity": 1, "line_total_text": "$129.00"}]
    assert "alert.abandoned.sent" in kinds(cart_body(client, keys, "big"))
    assert not any(k.startswith("alert.") for k in kinds(cart_body(client, keys, "small")))

    advance(runtime, clock, 50 * MINUTE)  # the first reminder goes out, an hour after
    post_events(client, keys, order_placed(at=clock.now(), cart_id="big", total=12900))
    advance(runtime, clock, MINUTE)
    assert [r.headers["X-Cartback-Event"] for r in team.received] == [
        "cart_abandoned",
        "cart_abandoned",
        "cart_recovered",
    ]


# --- push ------------------------------------------------------------------------------------


@pytest.fixture
def push_store(runtime: Runtime, clock: ManualClock, serve: Serve) -> tuple[StoreKeys, Any]:
    service = PushService(clock, Reply(201, b"", (("Location", "/m/1"),)))
    stand_in = serve(service)
    keys = make_store(
        runtime,
        clock,
        channels={
            "webpush": {
                "vapid_private_key": VAPID_RAW,
                "vapid_public_key": "unused-in-tests",
                "subject": SUBJECT,
            }
        },
    )
    use_flow(runtime, clock, keys, {"steps": [{"after": "1h", "channel": "push"}]})
    return keys, (service, stand_in)


def subscribe(client: TestClient, keys: StoreKeys, endpoint: str) -> Any:
    return client.post(
        "/v1/push-subscriptions",
        headers=keys.auth,
        json={
            "contact": {"email": "ann@example.com"},
            "kind": "web",
            "endpoint": endpoint,
            "keys": {"p256dh": b64url(point(UA_KEY)), "auth": b64url(AUTH)},
            "proof": {"user_agent": "Mozilla/5.0", "text": "Allow notifications"},
        },
    )


def test_a_registered_browser_gets_the_reminder_as_a_push(
    client: TestClient, runtime: Runtime, clock: ManualClock, push_store: tuple[StoreKeys, Any]
) -> None:
    keys, (service, stand_in) = push_store
    response = subscribe(client, keys, stand_in.url.replace("http://", "https://") + "/x")
    assert response.status_code == 201, response.text
    # the stand-in is plain HTTP on loopback: register its real URL for this store
    assert subscribe(client, keys, stand_in.url + SUBSCRIPTION_PATH).status_code == 422
    _register_http(runtime, keys, stand_in.url + SUBSCRIPTION_PATH)

    post_events(client, keys, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)

    assert service.problems == []
    [payload] = service.payloads
    assert payload["url"].startswith("http://cartback.test/r/")
    assert payload["title"]
    [message] = cart_body(client, keys)["messages"]
    assert (message["channel"], message["status"]) == ("push", "sent")


def _register_http(runtime: Runtime, keys: StoreKeys, endpoint: str) -> None:
    """Point the store's subscription at the loopback stand-in (http), as the API allows
    only https endpoints."""
    from sqlalchemy import update

    from cartback.contacts.models import PushSubscription
    from cartback.core.db import transaction

    with transaction(runtime.sessions) as session:
        session.execute(
            update(PushSubscription)
            .where(PushSubscription.store_id == keys.id)
            .values(endpoint=endpoint)
        )


def test_a_subscription_the_push_service_dropped_is_removed(
    client: TestClient,
    runtime: Runtime,
    clock: ManualClock,
    push_store: tuple[StoreKeys, Any],
) -> None:
    keys, (service, stand_in) = push_store
    service.reply = Reply(410, b"")
    assert subscribe(client, keys, "https://push.example/x").status_code == 201
    _register_http(runtime, keys, stand_in.url + SUBSCRIPTION_PATH)
    post_events(client, keys, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)

    [message] = cart_body(client, keys)["messages"]
    assert (message["status"], message["error_code"]) == ("failed", "webpush.410")
    from sqlalchemy import func, select

    from cartback.contacts.models import PushSubscription

    with runtime.sessions() as session:
        left = session.execute(select(func.count()).select_from(PushSubscription)).scalar_one()
    assert left == 0


def test_push_subscriptions_refuse_bad_input_with_a_named_field(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    no_keys = client.post(
        "/v1/push-subscriptions",
        headers=store.auth,
        json={"contact": {"email": "a@example.com"}, "kind": "web", "endpoint": "https://p.x/1"},
    )
    assert no_keys.status_code == 422
    assert "keys" in no_keys.text
    nobody = client.post(
        "/v1/push-subscriptions",
        headers=store.auth,
        json={"contact": {}, "kind": "fcm", "token": "abc"},
    )
    assert nobody.status_code == 400
    assert nobody.json()["code"] == "contact_required"
    unauthenticated = client.post("/v1/push-subscriptions", json={})
    assert unauthenticated.status_code == 401


def sms_store(
    runtime: Runtime, clock: ManualClock, twilio_url: str, *, costs: Any = None, **sms: Any
) -> StoreKeys:
    """A US store texting through a Twilio stand-in, one SMS step an hour after abandonment;
    the clock moved to the US daytime."""
    keys = make_store(
        runtime,
        clock,
        country="US",
        channels={
            "sms": {
                "provider": "twilio",
                "twilio": {
                    "account_sid": "AC" + "a" * 32,
                    "auth_token": "t",
                    "api_base_url": twilio_url,
                },
                "from_number": "+14155550000",
                **sms,
            }
        },
        costs=costs or {},
    )
    use_flow(runtime, clock, keys, {"steps": [{"after": "1h", "channel": "sms"}]})
    clock.set(clock.now() + 8 * HOUR)
    return keys


# --- cost ------------------------------------------------------------------------------------


def test_stats_report_cost_per_channel_and_revenue_per_unit_of_cost(
    client: TestClient, runtime: Runtime, clock: ManualClock, serve: Serve
) -> None:
    def twilio(request: Received) -> Reply:
        return Reply(201, json.dumps({"sid": "SM" + "1" * 32, "status": "queued"}).encode())

    stand_in = serve(twilio)
    keys = sms_store(runtime, clock, stand_in.url, costs={"sms_segment": {"US": "0.0079"}})
    post_events(
        client,
        keys,
        cart_updated(at=clock.now(), phone="(415) 555-0142", consent={"sms": True}),
    )
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)
    post_events(client, keys, order_placed(at=clock.now(), total=1999))

    stats = client.get("/v1/stats", headers=keys.auth).json()
    sms = stats["channels"]["sms"]
    segments = cart_body(client, keys)["messages"][0]["segments"]
    assert segments in (1, 2)
    assert sms["sent"] == 1
    assert Decimal(sms["cost"]) == Decimal("0.0079") * segments
    assert sms["recovered_revenue"] == 1999
    assert stats["revenue_per_cost"] == round(19.99 / (0.0079 * segments), 2)


# --- send rate -------------------------------------------------------------------------------


def test_sms_never_exceed_the_providers_rate_in_any_ten_second_window(
    client: TestClient, runtime: Runtime, clock: ManualClock, serve: Serve
) -> None:
    sent_at: list[float] = []

    def twilio(request: Received) -> Reply:
        sent_at.append(clock.now().timestamp())
        return Reply(201, json.dumps({"sid": f"SM{len(sent_at):032d}"}).encode())

    stand_in = serve(twilio)
    keys = sms_store(runtime, clock, stand_in.url, rate_per_second=0.5, burst=2)  # 1 per 2 s
    post_events(
        client,
        keys,
        *(
            cart_updated(
                f"c{i}",
                at=clock.now(),
                email=f"s{i}@example.com",
                phone=f"(415) 555-01{i:02d}",
                consent={"sms": True},
            )
            for i in range(12)
        ),
    )
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)
    for _ in range(40):  # a worker polling every second
        advance(runtime, clock, timedelta(seconds=1))

    assert len(sent_at) == 12  # every one went, none was dropped
    for start in sent_at:  # burst 2 + 0.5/s x 10 s = at most 7 in any 10 s
        assert sum(1 for t in sent_at if start <= t <= start + 10) <= 7
    assert max(sent_at) - min(sent_at) >= 19  # 12 sends at 0.5/s after a burst of 2


# --- the store's own news and orders ----------------------------------------------------------


def test_a_newsletter_today_moves_the_reminder_to_the_next_day(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(
        client,
        store,
        cart_updated(at=clock.now()),
        {
            "id": "news-1",
            "type": "message.sent_external",
            "occurred_at": clock.now().isoformat(),
            "contact": {"email": "ann@example.com"},
            "campaign": "January sale",
        },
    )
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)
    body = cart_body(client, store)
    assert body["messages"] == []
    [deferred] = [t for t in body["timeline"] if t["kind"] == "step.deferred"]
    assert deferred["reason"] == "newsletter_sent_today"
    assert deferred["until"] == "2026-01-06T10:30:00+00:00"  # the same time tomorrow
    advance(runtime, clock, 24 * HOUR)
    assert [m["status"] for m in cart_body(client, store)["messages"]] == ["sent"]


def test_an_order_not_yet_fulfilled_holds_cart_reminders_until_it_ships(
    client: TestClient, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> None:
    post_events(
        client, store, order_placed("o-1", at=clock.now(), cart_id=None, email="ann@example.com")
    )
    post_events(client, store, cart_updated("next", at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)
    body = cart_body(client, store, "next")
    assert body["messages"] == []
    skipped = [(t["step"], t["reason"]) for t in body["timeline"] if t["kind"] == "step.skipped"]
    assert skipped == [(0, "order_not_yet_fulfilled")]

    post_events(
        client,
        store,
        {
            "id": "ship-1",
            "type": "order.fulfilled",
            "occurred_at": clock.now().isoformat(),
            "order": {"id": "o-1"},
        },
    )
    advance(runtime, clock, 23 * HOUR)
    assert [(m["step"], m["status"]) for m in cart_body(client, store, "next")["messages"]] == [
        (1, "sent")
    ]


# --- Telegram --------------------------------------------------------------------------------


def test_a_shopper_who_linked_telegram_gets_the_reminder_there_until_they_opt_out(
    client: TestClient, runtime: Runtime, clock: ManualClock, serve: Serve, samples_dir: Any
) -> None:
    sample = (samples_dir / "telegram_send_message_response.json").read_bytes()
    bot = serve(lambda request: Reply(200, sample))
    keys = make_store(
        runtime,
        clock,
        channels={
            "telegram": {**CHANNELS["telegram"], "api_base_url": bot.url},
        },
    )
    use_flow(
        runtime,
        clock,
        keys,
        {
            "steps": [
                {"after": "1h", "channel": "telegram"},
                {"after": "24h", "channel": "telegram"},
            ]
        },
    )
    post_events(client, keys, cart_updated(at=clock.now()))
    token = start_token(client, keys, email="ann@example.com")
    assert post_telegram(client, keys, update(f"/start {token}")).status_code == 200
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)

    [request] = bot.received
    assert request.path == "/bot123:ABC/sendMessage"
    sent = json.loads(request.body)
    assert sent["chat_id"] == 123456789
    [[restore], [optout]] = sent["reply_markup"]["inline_keyboard"]
    assert restore["url"].startswith("http://cartback.test/r/")
    assert optout["callback_data"] == "optout:cart"
    [message] = cart_body(client, keys)["messages"]
    assert (message["channel"], message["status"], message["to"]) == (
        "telegram",
        "sent",
        "123456789",
    )

    assert post_telegram(client, keys, button("optout:cart")).status_code == 200
    advance(runtime, clock, 24 * HOUR)
    assert len(bot.received) == 1  # nothing after the opt-out
    body = cart_body(client, keys)
    assert body["journeys"][0]["exit_reason"] == "consent_withdrawn"


def test_a_registered_app_gets_the_reminder_through_fcm(
    client: TestClient, runtime: Runtime, clock: ManualClock, serve: Serve, samples_dir: Any
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = TokenEndpoint(key.public_key(), clock)
    token_server = serve(tokens, path="/token")
    fcm = FcmEndpoint(tokens, samples_dir, {})
    send_server = serve(fcm, path=SEND_PATH)
    keys = make_store(
        runtime,
        clock,
        channels={
            "fcm": {
                "project_id": PROJECT,
                "service_account": service_account(key),
                "token_url": token_server.url,
                "send_url": send_server.url,
            }
        },
    )
    use_flow(runtime, clock, keys, {"steps": [{"after": "1h", "channel": "push"}]})
    registered = client.post(
        "/v1/push-subscriptions",
        headers=keys.auth,
        json={"contact": {"email": "ann@example.com"}, "kind": "fcm", "token": "device-token-1"},
    )
    assert registered.status_code == 201, registered.text
    post_events(client, keys, cart_updated(at=clock.now()))
    advance(runtime, clock, 30 * MINUTE)
    advance(runtime, clock, HOUR)

    [request] = send_server.received
    message = json.loads(request.body)["message"]
    assert message["token"] == "device-token-1"
    assert message["notification"]["title"]
    assert message["notification"]["image"] == "https://acme.test/i/tee-1.jpg"
    [sent] = cart_body(client, keys)["messages"]
    assert (sent["channel"], sent["status"], sent["provider"]) == ("push", "sent", "push")
