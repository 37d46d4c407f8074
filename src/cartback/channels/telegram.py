"""Send a Telegram message with a "return to cart" button (integrations.md section 4, Bot API).

``POST {base_url}/bot{token}/sendMessage`` with a JSON body shaped like
``telegram_send_message_request.json``: ``chat_id``, ``text``, ``parse_mode``,
``link_preview_options{is_disabled}``, ``reply_markup{inline_keyboard}`` (one URL button row,
optionally a second row with a ``callback_data`` opt-out button). Telegram answers
``{"ok": true, "result": <Message>}`` or ``{"ok": false, "error_code", "description",
"parameters"?}``.

Outcomes (Telegram says to match on HTTP status + description, error_code contents may change):

=============================================  ==============================================
200 ``ok`` with ``result.message_id``           ``SendResult("telegram", str(message_id))``
403 ``bot was blocked by the user``,            :class:`TelegramChatGone` ``telegram.403``
403 ``user is deactivated``,                    (a :class:`PermanentSendError`): the chat can
403 ``bot can't initiate conversation``,        no longer (or never could) be messaged; the
400 ``chat not found``                          caller should stop using this chat id
                                                (unlink it / drop Telegram for the contact)
other 4xx (400 migrated group, 401 bad token)   :class:`PermanentSendError` ``telegram.<status>``
429 with ``parameters.retry_after``             :class:`TransientSendError` ``telegram.429``,
                                                ``retry_after`` in seconds
5xx                                             :class:`TransientSendError` ``telegram.<status>``
connect failure / connect timeout               :class:`TransientSendError` ``telegram.connect``
                                                / ``telegram.timeout``
read timeout after the request was written      :class:`SendOutcomeUnknown`
                                                ``telegram.timeout_after_send``: the message may
                                                exist; the Bot API has no idempotency key
=============================================  ==============================================

The bot token is part of the URL path. It never appears in an error's code or reason, in our
log records, or in a chained exception (transport errors are re-raised ``from None``), and a
filter on the ``httpx`` logger redacts ``/bot<token>/`` from its "HTTP Request: POST <url>" line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx

from cartback.channels.base import PermanentSendError, SendResult, TransientSendError
from cartback.channels.sms import SendOutcomeUnknown, json_object, transport_error

__all__ = [
    "DEFAULT_TELEGRAM_TIMEOUT",
    "OutgoingTelegram",
    "TelegramBot",
    "TelegramChatGone",
]

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"
DEFAULT_TELEGRAM_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
PARSE_MODES = frozenset({"HTML", "MarkdownV2", "Markdown"})
MAX_CALLBACK_DATA_BYTES = 64

# Descriptions (after the "Forbidden: " / "Bad Request: " prefix) meaning the chat is gone.
_CHAT_GONE = (
    "bot was blocked by the user",
    "user is deactivated",
    "bot can't initiate conversation with a user",
    "chat not found",
)
_REDACTED = "<redacted>"


@dataclass(frozen=True, slots=True)
class OutgoingTelegram:
    """One Telegram message ready to send.

    ``message_id`` is ours. ``chat_id`` is sent exactly as given: an int (a private chat's id,
    int64) stays a JSON number, a str (``@channelusername``) stays a string.
    ``button_text``/``button_url`` make the inline "return to cart" URL button; with
    ``optout_text`` and ``optout_data`` a second row holds a ``callback_data`` button
    (e.g. ``"Stop reminders"`` / ``"optout:cart"``) for the bot webhook to handle.
    ``disable_web_page_preview`` is sent as ``link_preview_options{is_disabled: true}``.
    """

    message_id: str
    chat_id: int | str
    text: str
    button_text: str
    button_url: str
    parse_mode: str | None = None
    disable_web_page_preview: bool = False
    optout_text: str | None = None
    optout_data: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.chat_id, bool) or not isinstance(self.chat_id, int | str):
            raise ValueError("chat_id must be an int or a str")
        if isinstance(self.chat_id, str) and not self.chat_id:
            raise ValueError("chat_id must not be empty")
        if not self.text:
            raise ValueError("text must not be empty")
        if not self.button_text:
            raise ValueError("button_text must not be empty")
        if not self.button_url.startswith(("https://", "http://", "tg://")):
            raise ValueError("button_url must be an http(s) or tg:// URL")
        if self.parse_mode is not None and self.parse_mode not in PARSE_MODES:
            raise ValueError(f"parse_mode must be one of {sorted(PARSE_MODES)}")
        if (self.optout_text is None) != (self.optout_data is None):
            raise ValueError("set both or neither of optout_text and optout_data")
        if self.optout_text is not None and not self.optout_text:
            raise ValueError("optout_text must not be empty")
        if self.optout_data is not None and not (
            0 < len(self.optout_data.encode()) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise ValueError(f"optout_data must be 1-{MAX_CALLBACK_DATA_BYTES} bytes")


class TelegramChatGone(PermanentSendError):
    """The chat cannot be messaged: blocked, deactivated, never started, or not found.

    Stop sending to this chat id (unlink it; fall back to another channel).
    """


class TelegramBot:
    """Sends messages as one Telegram bot. Thread-safe.

    ``client`` is injectable (tests point ``base_url`` at a local stand-in); a client made
    here is closed by :meth:`close`, an injected one is left to its owner.
    """

    name = "telegram"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = TELEGRAM_API,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_TELEGRAM_TIMEOUT,
    ) -> None:
        if not token or "/" in token:
            raise ValueError("token must be a non-empty bot token without '/'")
        self._token = token
        self._url = f"{base_url.rstrip('/')}/bot{token}/sendMessage"
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        _install_httpx_redaction()

    def __repr__(self) -> str:
        return f"TelegramBot(token={_REDACTED!r})"

    def send(self, msg: OutgoingTelegram) -> SendResult:
        try:
            response = self._client.post(self._url, json=request_body(msg), timeout=self._timeout)
        except httpx.TransportError as exc:
            failure = self._scrubbed(transport_error(self.name, exc))
            log.warning("telegram.send_failed", extra={"provider": self.name, "code": failure.code})
            # Not chained: the httpx exception carries the request, whose URL holds the token.
            raise failure from None
        data = json_object(response)
        if response.status_code == 200 and data.get("ok") is True:
            return self._result(data)
        error = self._error(response, data)
        log.warning("telegram.send_failed", extra={"provider": self.name, "code": error.code})
        raise error

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _result(self, data: dict[str, Any]) -> SendResult:
        result = data.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            # Telegram said ok but we cannot read the message: it may exist.
            raise SendOutcomeUnknown("telegram.bad_response", "ok without result.message_id")
        return SendResult(provider=self.name, provider_message_id=str(message_id))

    def _error(
        self, response: httpx.Response, data: dict[str, Any]
    ) -> TransientSendError | PermanentSendError:
        status = response.status_code
        description = self._scrub(str(data.get("description") or response.reason_phrase))
        parameters = data.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        if status == 429:
            return TransientSendError(
                "telegram.429", description, retry_after=_retry_after(parameters, response)
            )
        if status >= 500:
            return TransientSendError(f"telegram.{status}", description)
        if status == 200:
            # 200 with ok != true: not the documented shape; the message may exist.
            return SendOutcomeUnknown("telegram.bad_response", "200 without ok=true")
        if status in (400, 403) and _is_chat_gone(description):
            return TelegramChatGone(f"telegram.{status}", description)
        migrate_to = parameters.get("migrate_to_chat_id")
        if isinstance(migrate_to, int) and not isinstance(migrate_to, bool):
            description = f"{description} (migrate_to_chat_id={migrate_to})"
        return PermanentSendError(f"telegram.{status}", description)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, _REDACTED)

    def _scrubbed(self, error: TransientSendError) -> TransientSendError:
        reason = self._scrub(error.reason)
        if reason == error.reason:
            return error
        return type(error)(error.code, reason, retry_after=error.retry_after)


def request_body(msg: OutgoingTelegram) -> dict[str, Any]:
    """The sendMessage JSON, keys in the order of the sample request."""
    body: dict[str, Any] = {"chat_id": msg.chat_id, "text": msg.text}
    if msg.parse_mode is not None:
        body["parse_mode"] = msg.parse_mode
    if msg.disable_web_page_preview:
        body["link_preview_options"] = {"is_disabled": True}
    rows: list[list[dict[str, str]]] = [[{"text": msg.button_text, "url": msg.button_url}]]
    if msg.optout_text is not None and msg.optout_data is not None:
        rows.append([{"text": msg.optout_text, "callback_data": msg.optout_data}])
    body["reply_markup"] = {"inline_keyboard": rows}
    return body


def _is_chat_gone(description: str) -> bool:
    lowered = description.lower()
    return any(marker in lowered for marker in _CHAT_GONE)


def _retry_after(parameters: dict[str, Any], response: httpx.Response) -> float | None:
    value = parameters.get("retry_after")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value))
    header = response.headers.get("Retry-After")
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


_BOT_PATH = re.compile(r"/bot[^/\s]+/")


class _RedactBotToken(logging.Filter):
    """Rewrites ``/bot<token>/`` to ``/bot<redacted>/`` in httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/bot" in str(arg) for arg in record.args):
            record.args = tuple(
                _BOT_PATH.sub(f"/bot{_REDACTED}/", str(arg)) if "/bot" in str(arg) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "/bot" in record.msg:
            record.msg = _BOT_PATH.sub(f"/bot{_REDACTED}/", record.msg)
        return True


_REDACTION = _RedactBotToken()


def _install_httpx_redaction() -> None:
    logger = logging.getLogger("httpx")
    if _REDACTION not in logger.filters:
        logger.addFilter(_REDACTION)
