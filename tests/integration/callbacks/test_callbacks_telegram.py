"""The Telegram bot webhook and deep links end to end: /start links a chat once, the opt-out
button revokes consent once, a tampered token or a forged update changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.callbacks import service as callbacks
from cartback.contacts.models import Contact
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from support.callback_world import (
    CHANNELS,
    PHONE,
    TG_SECRET,
    add_contact,
    button,
    consents,
    post_telegram,
    problem,
    start_token,
    state,
    telegram_link,
    update,
)
from support.factories import StoreKeys, make_store


@pytest.mark.parametrize(
    "who",
    [{"email": "Ann@Example.com"}, {"phone": "(415) 555-2345"}, {"external_id": "cust-7"}],
)
def test_a_contacts_deep_link_fits_telegrams_start_parameter(
    client: TestClient, runtime: Runtime, clock: ManualClock, who: dict[str, str]
) -> None:
    store = make_store(runtime, clock, name="Acme Shoes", channels=CHANNELS, country="US")
    add_contact(runtime, clock, store, "ann", PHONE)
    with transaction(runtime.sessions) as session:
        contact = session.get(Contact, "ann")
        assert contact is not None
        contact.email, contact.external_id = "ann@example.com", "cust-7"

    token = start_token(client, store, **who)

    assert 1 <= len(token) <= 64
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
    assert callbacks.telegram_contact_id(runtime.signer, token) == "ann"


def test_a_deep_link_needs_a_contact_of_this_store_and_telegram(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, bare: StoreKeys
) -> None:
    other = make_store(runtime, clock, name="Other", channels=CHANNELS)
    add_contact(runtime, clock, other, "elsewhere", PHONE)
    add_contact(runtime, clock, bare, "bare-ann", None)

    problem(telegram_link(client, shop, email="elsewhere@example.com"), 404, "contact_not_found")
    problem(
        telegram_link(client, bare, email="bare-ann@example.com"), 404, "channel_not_configured"
    )
    problem(telegram_link(client, shop, email="a@b.test", phone="+1"), 422, "invalid_request")
    problem(telegram_link(client, shop), 422, "invalid_request")
    assert client.post("/v1/contacts/telegram-link", json={"email": "x@y.z"}).status_code == 401


def test_start_links_the_chat_and_records_consent_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    token = start_token(client, shop, email="ann@example.com")

    response = post_telegram(client, shop, update(f"/start {token}"))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "method": "sendMessage",
        "chat_id": 123456789,
        "text": "You'll get your cart reminders here.",
    }
    [consent] = consents(runtime, "telegram")
    assert (consent.contact_id, consent.granted, consent.source) == ("ann", True, "telegram_start")
    assert consent.proof == {
        "chat_id": 123456789,
        "username": "anna_k",
        "at": "2025-01-01T00:00:00Z",
        "update_id": 900001,
    }
    assert ("ann", "123456789") in state(runtime)["contacts"]
    after = state(runtime)
    assert post_telegram(client, shop, update(f"/start {token}")).json() == response.json()
    assert state(runtime) == after


@pytest.mark.parametrize("tamper", ["flip", "other store", "no token", "garbage"])
def test_a_tampered_or_foreign_token_is_ignored(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, tamper: str
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    other = make_store(runtime, clock, name="Other", channels=CHANNELS)
    add_contact(runtime, clock, other, "elsewhere", None)
    token = start_token(client, shop, email="ann@example.com")
    text = {
        "flip": f"/start {token[:-1]}{'A' if token[-1] != 'A' else 'B'}",
        "other store": f"/start {start_token(client, other, email='elsewhere@example.com')}",
        "no token": "/start",
        "garbage": "/start ___",
    }[tamper]
    before = state(runtime)

    response = post_telegram(client, shop, update(text))

    assert (response.status_code, response.json()) == (200, {})
    assert state(runtime) == before


def test_the_opt_out_button_revokes_telegram_consent_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    post_telegram(
        client, shop, update(f"/start {start_token(client, shop, email='ann@example.com')}")
    )
    clock.advance(timedelta(days=2))

    response = post_telegram(client, shop, button())

    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
        "text": "You won't get cart reminders here any more.",
    }
    assert [(c.granted, c.source) for c in consents(runtime, "telegram")] == [
        (True, "telegram_start"),
        (False, "telegram_button"),
    ]
    after = state(runtime)
    post_telegram(client, shop, button())
    assert state(runtime) == after


def test_an_opt_out_from_an_unlinked_chat_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    before = state(runtime)

    response = post_telegram(client, shop, button())

    assert response.json()["method"] == "answerCallbackQuery"
    assert state(runtime) == before


def test_a_telegram_update_without_the_secret_is_403(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, bare: StoreKeys
) -> None:
    add_contact(runtime, clock, shop, "ann", PHONE)
    token = start_token(client, shop, email="ann@example.com")
    before = state(runtime)

    problem(
        post_telegram(client, shop, update(f"/start {token}"), secret="guess"),
        403,
        "invalid_signature",
    )
    response = client.post(f"/v1/callbacks/telegram/{shop.id}", json=update(f"/start {token}"))
    problem(response, 403, "invalid_signature")
    problem(post_telegram(client, bare, update("/start x")), 404, "channel_not_configured")
    assert state(runtime) == before


def test_a_malformed_telegram_update_is_a_4xx(client: TestClient, shop: StoreKeys) -> None:
    response = client.post(
        f"/v1/callbacks/telegram/{shop.id}",
        content=b"{oops",
        headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
    )
    problem(response, 400, "malformed_json")
    problem(post_telegram(client, shop, {"message": {}}), 422, "missing_field")
