"""Telegram webhook: the secret token, /start and button updates in the documented shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cartback.channels.inbound import InvalidCallback
from cartback.channels.inbound import telegram as tg
from support.callback_samples import json_sample


def start_update(text: str, *, chat_type: str = "private") -> bytes:
    """The sample's Message, as the shopper would send it (from = the chat's user)."""
    message: dict[str, Any] = json_sample("telegram_send_message_response")["result"]
    message = {
        "message_id": 17,
        "from": {"id": 123456789, "is_bot": False, "first_name": "Anna", "username": "anna_k"},
        "chat": {**message["chat"], "type": chat_type},
        "date": message["date"],
        "text": text,
    }
    return json.dumps({"update_id": 900001, "message": message}).encode()


def button_update(data: str | None = "optout:cart") -> bytes:
    sent = json_sample("telegram_send_message_response")["result"]
    query: dict[str, Any] = {
        "id": "4382bfdwdsb323b2d9",
        "from": {"id": 123456789, "is_bot": False, "first_name": "Anna", "username": "anna_k"},
        "message": sent,
        "chat_instance": "-1234",
    }
    if data is not None:
        query["data"] = data
    return json.dumps({"update_id": 900002, "callback_query": query}).encode()


def test_the_secret_token_must_match_exactly() -> None:
    assert tg.verify_secret_token("s3cret-Token_1", "s3cret-Token_1")
    assert not tg.verify_secret_token("s3cret-Token_1", "s3cret-token_1")
    assert not tg.verify_secret_token("s3cret-Token_1", None)
    assert not tg.verify_secret_token("s3cret-Token_1", "")


def test_a_start_with_a_payload() -> None:
    update = tg.parse_update(start_update("/start AbC_12-x"))

    assert update == tg.StartCommand(
        update_id=900001,
        chat_id=123456789,
        payload="AbC_12-x",
        username="anna_k",
        sent_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("text", "payload"),
    [("/start", None), ("/start@example_shop_bot tok", "tok"), ("/start " + "x" * 65, None)],
)
def test_start_variants(text: str, payload: str | None) -> None:
    update = tg.parse_update(start_update(text))

    assert isinstance(update, tg.StartCommand)
    assert update.payload == payload


@pytest.mark.parametrize("text", ["hello", "/help", "/started x", "/start a b"])
def test_other_messages_are_nothing(text: str) -> None:
    assert tg.parse_update(start_update(text)) is None


def test_a_start_in_a_group_is_nothing() -> None:
    assert tg.parse_update(start_update("/start tok", chat_type="group")) is None


def test_a_button_press() -> None:
    update = tg.parse_update(button_update())

    assert update == tg.ButtonPress(
        update_id=900002,
        query_id="4382bfdwdsb323b2d9",
        user_id=123456789,
        data="optout:cart",
        chat_id=123456789,
        username="anna_k",
    )


def test_an_update_of_another_kind_is_nothing() -> None:
    body = {"update_id": 5, "edited_message": {"text": "/start x"}}

    assert tg.parse_update(json.dumps(body).encode()) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[]", "invalid_field"),
        (b'{"message": {}}', "missing_field"),
        (b'{"update_id": true}', "missing_field"),
        (b'{"update_id": 1, "callback_query": {"id": "q", "from": {}}}', "invalid_field"),
        (b'{"update_id": 1, "message": {"chat": "x"}}', "invalid_field"),
    ],
)
def test_a_malformed_update_is_refused(body: bytes, code: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        tg.parse_update(body)

    assert caught.value.code == code


def test_webhook_answers_are_bot_api_calls() -> None:
    assert tg.send_message(42, "Hi") == {"method": "sendMessage", "chat_id": 42, "text": "Hi"}
    assert tg.answer_callback("q1") == {"method": "answerCallbackQuery", "callback_query_id": "q1"}
    assert tg.answer_callback("q1", "Done")["text"] == "Done"


@pytest.mark.parametrize(
    "body",
    [
        b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "text": "\\u0000"}}',
        b'{"update_id": 1, "message": {"chat": {"id": 1, "type": "private"}, "text": "\\ud800"}}',
    ],
)
def test_text_no_database_could_store_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidCallback) as caught:
        tg.parse_update(body)

    assert caught.value.code == "malformed_json"


def test_a_valid_surrogate_pair_is_text_like_any_other() -> None:
    body = start_update("/start tok").replace(b'"/start tok"', b'"/start \\ud83d\\ude00"')

    update = tg.parse_update(body)

    assert isinstance(update, tg.StartCommand)
    assert update.payload == "\U0001f600"
