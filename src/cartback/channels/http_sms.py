"""Send SMS through any HTTP API, described by a small :class:`HttpSmsConfig`.

For regional providers without an adapter of their own. Placeholders ``{to}``, ``{from}``,
``{body}``, ``{message_id}`` and ``{status_callback}`` are filled in the URL (URL-quoted)
and the body. ``{from}`` is the sender number or messaging service id.

A JSON provider::

    HttpSmsConfig(
        url="https://sms.example.kz/v1/send",
        template={"recipient": "{to}", "sender": "{from}", "text": "{body}", "ref": "{message_id}"},
        auth_header=("Authorization", "Bearer s3cret"),
        id_path="data.message_id",
        errors={"INVALID_NUMBER": "permanent", "THROTTLED": "transient"},
    )

A string template is sent verbatim with each value escaped for ``encoding`` (JSON string
content or form-quoted), so ``'{"to": "{to}"}'`` needs no doubled braces.

Outcomes: a status in ``success_statuses`` is success (the provider id from ``id_path``, a
dotted path with list indexes like ``messages.0.id``, or the first group of ``id_regex``).
Otherwise the first key of ``errors`` found in the response body decides permanent or
transient (code ``{name}.{key}``); unmatched, 408/429/5xx are transient and other statuses
permanent (code ``{name}.http_{status}``). Transport failures map as for Twilio
(:func:`cartback.channels.sms.transport_error`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import httpx

from cartback.channels.base import PermanentSendError, SendResult, TransientSendError
from cartback.channels.sms import (
    DEFAULT_SMS_TIMEOUT,
    OutgoingSms,
    retry_after,
    transport_error,
)
from cartback.core.clock import Clock, SystemClock

__all__ = ["HttpSms", "HttpSmsConfig"]

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{(to|from|body|message_id|status_callback)\}")
_TRANSIENT_STATUSES = frozenset({408, 429})
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"

Template = str | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HttpSmsConfig:
    url: str
    template: Template | None = None
    method: str = "POST"
    encoding: Literal["json", "form"] = "json"
    auth_header: tuple[str, str] | None = None
    success_statuses: frozenset[int] = frozenset({200, 201, 202})
    id_path: str | None = None
    id_regex: str | None = None
    errors: Mapping[str, Literal["permanent", "transient"]] = field(default_factory=dict)
    name: str = "http_sms"
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_SMS_TIMEOUT)


class HttpSms:
    """An :class:`~cartback.channels.sms.SmsChannel` for one configured HTTP provider."""

    def __init__(
        self,
        config: HttpSmsConfig,
        *,
        client: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=config.timeout)
        self._clock = clock or SystemClock()

    def send(self, sms: OutgoingSms) -> SendResult:
        cfg = self.config
        values = _values(sms)
        url = _fill(cfg.url, values, quote)
        headers = dict([cfg.auth_header]) if cfg.auth_header else {}
        body, content_type = _body(cfg, values)
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = self._client.request(
                cfg.method, url, headers=headers, timeout=cfg.timeout, **body
            )
        except httpx.TransportError as exc:
            error = transport_error(self.name, exc)
            log.warning("sms.send_failed", extra={"provider": self.name, "code": error.code})
            raise error from exc
        if response.status_code in cfg.success_statuses:
            return SendResult(self.name, _provider_id(cfg, response))
        raise self._error(response)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _error(self, response: httpx.Response) -> TransientSendError | PermanentSendError:
        status, text = response.status_code, response.text
        reason = text[:200] or response.reason_phrase
        for key, kind in self.config.errors.items():
            if key in text:
                return _make(kind, f"{self.name}.{key}", reason, response, self._clock)
        kind = "transient" if status in _TRANSIENT_STATUSES or status >= 500 else "permanent"
        return _make(kind, f"{self.name}.http_{status}", reason, response, self._clock)


def _make(
    kind: str, code: str, reason: str, response: httpx.Response, clock: Clock
) -> TransientSendError | PermanentSendError:
    if kind == "permanent":
        return PermanentSendError(code, reason)
    return TransientSendError(code, reason, retry_after=retry_after(response, clock.now()))


def _values(sms: OutgoingSms) -> dict[str, str]:
    return {
        "to": sms.to_number,
        "from": sms.sender,
        "body": sms.body,
        "message_id": sms.message_id,
        "status_callback": sms.status_callback_url or "",
    }


def _fill(text: str, values: Mapping[str, str], escape: Any = None) -> str:
    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return str(escape(value, safe="")) if escape else value

    return _PLACEHOLDER.sub(one, text)


def _json_escape(value: str, safe: str = "") -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _body(cfg: HttpSmsConfig, values: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """httpx keyword arguments for the body (``json=``, ``data=`` or ``content=``) and,
    for a string template, the content type to send with it."""
    if cfg.template is None:
        return {}, None
    if isinstance(cfg.template, str):
        if cfg.encoding == "json":
            return {"content": _fill(cfg.template, values, _json_escape).encode()}, _JSON
        return {"content": _fill(cfg.template, values, quote_plus).encode()}, _FORM
    filled = _fill_tree(cfg.template, values)
    return ({"json": filled} if cfg.encoding == "json" else {"data": filled}), None


def _fill_tree(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _fill(node, values)
    if isinstance(node, Mapping):
        return {key: _fill_tree(item, values) for key, item in node.items()}
    if isinstance(node, list | tuple):
        return [_fill_tree(item, values) for item in node]
    return node


def _provider_id(cfg: HttpSmsConfig, response: httpx.Response) -> str | None:
    if cfg.id_regex is not None:
        match = re.search(cfg.id_regex, response.text)
        return match.group(1) if match else None
    if cfg.id_path is None:
        return None
    try:
        node: Any = response.json()
    except ValueError:
        return None
    for part in cfg.id_path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return None if node is None else str(node)
