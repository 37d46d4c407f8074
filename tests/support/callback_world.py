"""What the callback tests share: a store with every channel set up for callbacks, rows a
callback may update (a contact, a cart in a journey, its message), and one view of every row
a callback may touch, to assert that a replay or a forgery changed nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.carts.models import Cart, TimelineEntry
from cartback.contacts.models import Consent, Contact, Suppression
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.flows.models import Enrollment, Flow
from cartback.messages.models import Message
from cartback.queue import Job
from support.callback_samples import MAILGUN_KEY, json_sample, sendgrid_public_key
from support.factories import StoreKeys, make_store

PROBLEM = "application/problem+json"
BASE = "http://cartback.test"  # the instance's base URL in tests/conftest.py
AUTH_TOKEN = "12345"  # the Twilio samples' auth token
APP_SECRET = "test_app_secret"  # the WhatsApp sample's app secret
VERIFY_TOKEN = "my-verify-token"
TG_SECRET = "tg-webhook-secret_1"
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
PHONE = "+14155552345"  # the shopper in the Twilio samples
DELIVERED_SID = "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
WA_DELIVERED = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
WA_FAILED = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTgA"
SES_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"

CHANNELS: dict[str, Any] = {
    "sms": {
        "twilio": {"account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "auth_token": AUTH_TOKEN},
        "from_number": "+14155550100",
    },
    "whatsapp": {
        "phone_number_id": "106540352242922",
        "access_token": "EAAG-test",
        "app_secret": APP_SECRET,
        "verify_token": VERIFY_TOKEN,
    },
    "telegram": {
        "bot_token": "123:ABC",
        "bot_username": "acme_shoes_bot",
        "webhook_secret": TG_SECRET,
    },
    "email_events": {
        "sendgrid_public_key": sendgrid_public_key(),
        "mailgun_signing_key": MAILGUN_KEY,
        "postmark_username": "hook",
        "postmark_password": "p4ss word",
        "ses_topic_arns": [TOPIC],
    },
}
POLICY: dict[str, Any] = {
    "stop_words": ["ARRÊT"],
    "help_text": "{store}: reminders about carts you left. Reply STOP to opt out.",
}


def callback_store(
    runtime: Runtime, clock: ManualClock, name: str = "Acme Shoes", **settings: Any
) -> StoreKeys:
    return make_store(runtime, clock, name=name, channels=CHANNELS, policy=POLICY, **settings)


@dataclass(frozen=True)
class Seeded:
    contact_id: str
    cart_id: str
    enrollment_id: str
    message_id: str


def seed(
    runtime: Runtime,
    clock: ManualClock,
    store: StoreKeys,
    *,
    channel: str,
    provider: str,
    provider_message_id: str,
    to_address: str,
    status: str = "sent",
    email: str = "ann@example.com",
    phone: str | None = PHONE,
    cart: str = "cart-1",
) -> Seeded:
    """A contact, a cart in an active journey, and that journey's step-0 message."""
    now = clock.now()
    with transaction(runtime.sessions) as session:
        contact = session.execute(
            select(Contact).where(Contact.store_id == store.id, Contact.email == email)
        ).scalar_one_or_none()
        if contact is None:
            contact = Contact(
                id=f"c-{email}"[:32], store_id=store.id, email=email, phone=phone,
                orders_count=0, created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(contact)
        flow = session.execute(select(Flow).where(Flow.store_id == store.id)).scalar_one_or_none()
        if flow is None:
            flow = Flow(
                id=f"f-{store.id}"[:32], store_id=store.id, version=1, name="Cart recovery",
                definition={}, created_at=now,
            )  # fmt: skip
            session.add(flow)
        session.flush()
        row = Cart(
            id=f"k-{cart}-{store.id}"[:32], store_id=store.id, external_id=cart,
            contact_id=contact.id, currency="USD", items=[], value=1999, item_count=1,
            stage="cart", status="abandoned", last_activity_at=now, reminders_sent=1,
            created_at=now, updated_at=now,
        )  # fmt: skip
        enrollment = Enrollment(
            id=f"e-{cart}-{store.id}"[:32], store_id=store.id, cart_id=row.id,
            contact_id=contact.id, flow_id=flow.id, status="active", step_index=1,
            started_at=now, next_due_at=now + timedelta(hours=23),
        )  # fmt: skip
        message = Message(
            id=f"m-{cart}-{store.id}"[:32], store_id=store.id, enrollment_id=enrollment.id,
            step_index=0, cart_id=row.id, contact_id=contact.id, channel=channel,
            template="reminder", to_address=to_address, status=status, provider=provider,
            provider_message_id=provider_message_id, attempts=1, created_at=now,
            sent_at=now, updated_at=now,
        )  # fmt: skip
        session.add_all([row, enrollment])
        session.flush()
        session.add(message)
        return Seeded(contact.id, row.id, enrollment.id, message.id)


def state(runtime: Runtime) -> dict[str, Any]:
    """Every row a callback may touch, in a comparable form."""
    with runtime.sessions() as s:
        return {
            "messages": sorted(
                (m.id, m.status, m.error_code, m.error_reason, m.delivered_at)
                for m in s.scalars(select(Message))
            ),
            "consents": sorted(
                (c.contact_id, c.channel, c.granted, c.source) for c in s.scalars(select(Consent))
            ),
            "suppressions": sorted(
                (x.store_id, x.channel, x.address, x.reason) for x in s.scalars(select(Suppression))
            ),
            "enrollments": sorted(
                (e.id, e.status, e.exit_reason) for e in s.scalars(select(Enrollment))
            ),
            "jobs": sorted((j.kind, j.key) for j in s.scalars(select(Job))),
            "timeline": s.execute(select(func.count()).select_from(TimelineEntry)).scalar_one(),
            "contacts": sorted((c.id, c.telegram_chat_id) for c in s.scalars(select(Contact))),
        }


def message(runtime: Runtime, message_id: str) -> Message:
    with runtime.sessions() as s:
        found = s.get(Message, message_id)
        assert found is not None
        s.expunge(found)
        return found


def consents(runtime: Runtime, channel: str) -> list[Consent]:
    with runtime.sessions() as s:
        rows = list(
            s.scalars(
                select(Consent).where(Consent.channel == channel).order_by(Consent.occurred_at)
            )
        )
        s.expunge_all()
        return rows


def suppressions(runtime: Runtime) -> set[tuple[str, str, str]]:
    with runtime.sessions() as s:
        return {(x.channel, x.address, x.reason) for x in s.scalars(select(Suppression))}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


def add_contact(
    runtime: Runtime, clock: ManualClock, store: StoreKeys, contact_id: str, phone: str | None
) -> None:
    now = clock.now()
    with transaction(runtime.sessions) as session:
        session.add(
            Contact(
                id=contact_id, store_id=store.id, email=f"{contact_id}@example.com", phone=phone,
                orders_count=0, created_at=now, updated_at=now,
            )
        )  # fmt: skip


# --- Telegram: deep links and bot updates as Telegram sends them -----------------------------


def telegram_link(client: TestClient, store: StoreKeys, **who: str) -> Any:
    return client.post("/v1/contacts/telegram-link", json=who, headers=store.auth)


def start_token(client: TestClient, store: StoreKeys, **who: str) -> str:
    response = telegram_link(client, store, **who)
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    prefix = "https://t.me/acme_shoes_bot?start="
    assert url.startswith(prefix)
    return url.removeprefix(prefix)


def update(text: str, *, update_id: int = 900001) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 17,
            "from": {"id": 123456789, "is_bot": False, "first_name": "Anna", "username": "anna_k"},
            "chat": {"id": 123456789, "first_name": "Anna", "type": "private"},
            "date": 1735689600,
            "text": text,
        },
    }


def button(data: str = "optout:cart", query_id: str = "4382bfdwdsb323b2d9") -> dict[str, Any]:
    sent = json_sample("telegram_send_message_response")["result"]
    return {
        "update_id": 900002,
        "callback_query": {
            "id": query_id,
            "from": {"id": 123456789, "is_bot": False, "first_name": "Anna", "username": "anna_k"},
            "message": sent,
            "chat_instance": "-1",
            "data": data,
        },
    }


def post_telegram(
    client: TestClient, store: StoreKeys, body: dict[str, Any], secret: str = TG_SECRET
) -> Any:
    return client.post(
        f"/v1/callbacks/telegram/{store.id}",
        json=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": secret},
    )
