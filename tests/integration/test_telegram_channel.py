"""TelegramBot against a real HTTP server on loopback that speaks the Bot API's sendMessage."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cartback.channels import (
    ChannelError,
    OutgoingTelegram,
    PermanentSendError,
    SendOutcomeUnknown,
    TelegramBot,
    TelegramChatGone,
    TransientSendError,
)
from support.stand_in import Received, Reply, Serve, StandIn

TOKEN = "7000000001:AAH-sEcReT_t0ken-value-xyz"
SEND_PATH = f"/bot{TOKEN}/sendMessage"


def _load(samples_dir: Path, name: str) -> Any:
    return json.loads((samples_dir / name).read_text())


def bot_api(samples_dir: Path, errors: dict[int | str, str] | None = None) -> Callable[..., Reply]:
    """sendMessage: 404 for an unknown token/method, the sample error for a chat id in
    ``errors``, else the sample success."""
    samples = _load(samples_dir, "telegram_error_responses.json")
    success = (samples_dir / "telegram_send_message_response.json").read_bytes()

    def answer(request: Received) -> Reply:
        if request.path != SEND_PATH:
            return Reply(404, b'{"ok":false,"error_code":404,"description":"Not Found"}')
        if request.headers.get("Content-Type") != "application/json":
            return Reply(400, b'{"ok":false,"error_code":400,"description":"Bad Request"}')
        body = json.loads(request.body)
        sample = (errors or {}).get(body["chat_id"])
        if sample is not None:
            error = samples[sample]
            return Reply(error["http_status"], json.dumps(error["body"]).encode())
        return Reply(200, success)

    return answer


def _like_sample(samples_dir: Path, **changes: Any) -> OutgoingTelegram:
    sample = _load(samples_dir, "telegram_send_message_request.json")
    [[url_button], [optout_button]] = sample["reply_markup"]["inline_keyboard"]
    fields: dict[str, Any] = {
        "message_id": "msg-1",
        "chat_id": sample["chat_id"],
        "text": sample["text"],
        "button_text": url_button["text"],
        "button_url": url_button["url"],
        "parse_mode": sample["parse_mode"],
        "disable_web_page_preview": sample["link_preview_options"]["is_disabled"],
        "optout_text": optout_button["text"],
        "optout_data": optout_button["callback_data"],
    }
    fields.update(changes)
    return OutgoingTelegram(**fields)


def _bot(stand_in: StandIn, http: httpx.Client) -> TelegramBot:
    return TelegramBot(TOKEN, base_url=stand_in.url, client=http)


def _assert_no_token(error: BaseException) -> None:
    text = "".join(traceback.format_exception(error)) + repr(error) + str(error)
    if isinstance(error, ChannelError):
        text += error.code + error.reason
    assert TOKEN not in text
    assert TOKEN.split(":")[1] not in text


# --- success --------------------------------------------------------------------------------


def test_sends_the_sample_request_and_reads_the_message_id(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(bot_api(samples_dir))
    sample = _load(samples_dir, "telegram_send_message_request.json")

    result = _bot(stand_in, http).send(_like_sample(samples_dir))

    assert (result.provider, result.provider_message_id) == ("telegram", "4242")
    [request] = stand_in.received
    assert (request.method, request.path) == ("POST", SEND_PATH)
    assert TOKEN in request.path
    assert request.headers["Content-Type"] == "application/json"
    received = json.loads(request.body)
    assert received == sample
    assert list(received) == list(sample)  # same keys, same order


def test_our_values_in_the_sample_shape(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(bot_api(samples_dir))

    _bot(stand_in, http).send(
        OutgoingTelegram(
            message_id="m2",
            chat_id=-1001234567890,
            text="Ваша корзина ждёт <b>вас</b> 🛒",
            button_text="Return to cart",
            button_url="https://shop.example.com/r/Zz9",
            parse_mode="HTML",
            disable_web_page_preview=True,
        )
    )

    [request] = stand_in.received
    assert json.loads(request.body) == {
        "chat_id": -1001234567890,
        "text": "Ваша корзина ждёт <b>вас</b> 🛒",
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Return to cart", "url": "https://shop.example.com/r/Zz9"}]
            ]
        },
    }


def test_optional_fields_are_omitted_and_a_string_chat_id_stays_a_string(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(bot_api(samples_dir))

    _bot(stand_in, http).send(
        OutgoingTelegram("m3", "123456789", "Hi", "Return to cart", "https://s.example/r/1")
    )

    [request] = stand_in.received
    assert json.loads(request.body) == {
        "chat_id": "123456789",
        "text": "Hi",
        "reply_markup": {
            "inline_keyboard": [[{"text": "Return to cart", "url": "https://s.example/r/1"}]]
        },
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"chat_id": True},
        {"chat_id": ""},
        {"text": ""},
        {"button_text": ""},
        {"button_url": "javascript:alert(1)"},
        {"parse_mode": "html"},
        {"optout_data": None},
        {"optout_data": "x" * 65},
    ],
)
def test_invalid_messages_are_refused(samples_dir: Path, changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        _like_sample(samples_dir, **changes)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        ("blocked_by_user", "telegram.403"),
        ("user_deactivated", "telegram.403"),
        ("cannot_initiate", "telegram.403"),
        ("chat_not_found", "telegram.400"),
    ],
)
def test_a_gone_chat_is_permanent(
    serve: Serve, http: httpx.Client, samples_dir: Path, sample: str, code: str
) -> None:
    stand_in = serve(bot_api(samples_dir, {555: sample}))
    description = _load(samples_dir, "telegram_error_responses.json")[sample]["body"]["description"]

    with pytest.raises(TelegramChatGone) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir, chat_id=555))

    assert isinstance(raised.value, PermanentSendError)
    assert (raised.value.code, raised.value.reason) == (code, description)
    _assert_no_token(raised.value)


def test_a_migrated_group_is_permanent_and_names_the_new_chat(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(bot_api(samples_dir, {-100: "group_migrated"}))

    with pytest.raises(PermanentSendError) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir, chat_id=-100))

    assert not isinstance(raised.value, TelegramChatGone)
    assert raised.value.code == "telegram.400"
    assert raised.value.reason == (
        "Bad Request: group chat was upgraded to a supergroup chat "
        "(migrate_to_chat_id=-1001234567890)"
    )
    _assert_no_token(raised.value)


def test_a_rejected_token_is_permanent_and_not_revealed(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    error = _load(samples_dir, "telegram_error_responses.json")["unauthorized_token"]
    stand_in = serve(
        lambda request: Reply(error["http_status"], json.dumps(error["body"]).encode())
    )

    with pytest.raises(PermanentSendError) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir))

    assert (raised.value.code, raised.value.reason) == ("telegram.401", "Unauthorized")
    _assert_no_token(raised.value)


def test_flood_wait_is_transient_with_retry_after(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(bot_api(samples_dir, {777: "flood_wait"}))

    with pytest.raises(TransientSendError) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir, chat_id=777))

    assert (raised.value.code, raised.value.retry_after) == ("telegram.429", 35.0)
    assert raised.value.reason == "Too Many Requests: retry after 35"
    assert not isinstance(raised.value, SendOutcomeUnknown)
    _assert_no_token(raised.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, b'{"ok":false,"error_code":500,"description":"Internal Server Error"}'),
        Reply(502, b"<html>Bad Gateway</html>", (("Content-Type", "text/html"),)),
    ],
)
def test_5xx_is_transient(
    serve: Serve, http: httpx.Client, samples_dir: Path, reply: Reply
) -> None:
    stand_in = serve(lambda request: reply)

    with pytest.raises(TransientSendError) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir))

    assert (raised.value.code, raised.value.retry_after) == (f"telegram.{reply.status}", None)
    assert not isinstance(raised.value, SendOutcomeUnknown)
    _assert_no_token(raised.value)


def test_ok_without_a_message_id_is_unknown(
    serve: Serve, http: httpx.Client, samples_dir: Path
) -> None:
    stand_in = serve(lambda request: Reply(200, b'{"ok":true,"result":{}}'))

    with pytest.raises(SendOutcomeUnknown) as raised:
        _bot(stand_in, http).send(_like_sample(samples_dir))

    assert raised.value.code == "telegram.bad_response"


def test_timeout_after_sending_is_reported_as_unknown(
    serve: Serve, samples_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = bot_api(samples_dir)
    stand_in = serve(lambda request: Reply(200, answer(request).body, delay=5.0))
    bot = TelegramBot(TOKEN, base_url=stand_in.url, timeout=httpx.Timeout(0.3, connect=1.0))

    with caplog.at_level(logging.DEBUG), pytest.raises(SendOutcomeUnknown) as raised:
        bot.send(_like_sample(samples_dir))
    bot.close()

    assert raised.value.code == "telegram.timeout_after_send"
    assert isinstance(raised.value, TransientSendError)
    assert len(stand_in.received) == 1  # the request did reach Telegram
    _assert_no_token(raised.value)
    assert TOKEN not in caplog.text


def test_connection_refused_is_transient_connect(
    http: httpx.Client, samples_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = TelegramBot(TOKEN, base_url="http://127.0.0.1:9", client=http)

    with caplog.at_level(logging.DEBUG), pytest.raises(TransientSendError) as raised:
        bot.send(_like_sample(samples_dir))

    assert raised.value.code == "telegram.connect"
    assert not isinstance(raised.value, SendOutcomeUnknown)
    _assert_no_token(raised.value)
    assert TOKEN not in caplog.text


def test_the_token_is_not_logged_on_success_or_failure(
    serve: Serve, http: httpx.Client, samples_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in = serve(bot_api(samples_dir, {555: "blocked_by_user"}))
    bot = _bot(stand_in, http)

    with caplog.at_level(logging.DEBUG):
        bot.send(_like_sample(samples_dir))
        with pytest.raises(TelegramChatGone):
            bot.send(_like_sample(samples_dir, chat_id=555))

    assert "HTTP Request: POST" in caplog.text  # httpx did log the request line...
    assert "/bot<redacted>/sendMessage" in caplog.text  # ...with the token redacted
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(bot)
    assert [r.getMessage() for r in caplog.records if r.name == "cartback.channels.telegram"] == [
        "telegram.send_failed"
    ]
