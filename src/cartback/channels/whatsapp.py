"""Send WhatsApp template messages with Meta's Cloud API (integrations.md section 4).

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with ``Authorization: Bearer
<access token>`` and a JSON body shaped like ``whatsapp_send_template_request.json``::

    {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "<digits>",
     "type": "template", "template": {"name": ..., "language": {"code": ...},
     "components": [header image?, body text parameters?, url button suffix?]}}

The answer is ``{"messages": [{"id": "wamid..."}], ...}``; errors are
``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``.

Outcomes:

============================================  ============================================
2xx with ``messages[0].id``                   ``SendResult(provider="whatsapp", wamid)``;
                                              ``detail`` is ``message_status`` if given
2xx without an id                             :class:`SendOutcomeUnknown`
                                              ``whatsapp.bad_response``
error code 131026 (undeliverable), 131047     :class:`PermanentSendError` ``whatsapp.<code>``
(re-engagement: outside the 24 h window),
131049 (per-user marketing cap), 131050
(user stopped marketing), 132001 (template
missing), and any other coded 4xx
error code 4, 80007, 130429, 131048, 131056   :class:`TransientSendError` ``whatsapp.<code>``,
(rate limits) and 1, 2, 131000, 131016,       ``retry_after`` from ``Retry-After`` if any
133004 (Meta-side trouble), whatever the
HTTP status
429 or 5xx with any other code or none        :class:`TransientSendError`
                                              ``whatsapp.http_<status>``, ``retry_after``
                                              from ``Retry-After`` if any
4xx without a code (e.g. a bad phone number  :class:`PermanentSendError`
id)                                           ``whatsapp.http_<status>``
connect failure / connect timeout             :class:`TransientSendError` ``whatsapp.connect`` /
                                              ``whatsapp.timeout``
read timeout after the request was written    :class:`SendOutcomeUnknown`
                                              ``whatsapp.timeout_after_send``
a message that cannot be built (bad ``to``,   :class:`PermanentSendError`
empty / multi-line parameter)                 ``whatsapp.invalid_message``, nothing sent
============================================  ============================================

131049 is permanent *for this message*: Meta asks not to retry it soon, and a caller's
backoff would retry within minutes; the journey falls back to its next channel instead.
The same codes arrive asynchronously in the status webhook (``statuses[].errors[].code``):
:func:`error_for_code` classifies them the same way there.

The Cloud API has no idempotency key, so a resend after :class:`SendOutcomeUnknown` may
deliver twice. The access token never appears in an error or a log line: every reason that
leaves this module has it masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from cartback.channels.base import PermanentSendError, SendResult, TransientSendError
from cartback.channels.sms import SendOutcomeUnknown, json_object, retry_after, transport_error
from cartback.core.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_WHATSAPP_TIMEOUT",
    "GRAPH_API",
    "GRAPH_API_VERSION",
    "OutgoingWhatsApp",
    "WhatsAppCloud",
    "error_for_code",
    "template_body",
]

log = logging.getLogger(__name__)

GRAPH_API = "https://graph.facebook.com"
GRAPH_API_VERSION = "v24.0"
# Same reasoning as SMS: a send answers in well under a second; a slow connect is a broken route.
DEFAULT_WHATSAPP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

PROVIDER = "whatsapp"

# Throughput / rate limits: the same message may go through later.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
# Meta-side trouble ("unknown error", "service unavailable"): retry with backoff.
TRANSIENT_CODES = RATE_LIMIT_CODES | {1, 2, 131000, 131016, 133004}

_TO = re.compile(r"\+?([1-9][0-9]{6,14})")
# Meta refuses text parameters with new-line/tab characters or more than 4 consecutive spaces.
_BAD_PARAMETER = re.compile(r"[\n\r\t]| {5,}")


@dataclass(frozen=True, slots=True)
class OutgoingWhatsApp:
    """One approved template message ready to send.

    ``message_id`` is ours (the Cloud API has no field for it, so it is not sent).
    ``to`` is the recipient's E.164 number as digits, country code included
    (``16505076520``; a leading ``+`` is accepted and dropped). ``body_parameters`` fill the
    body's ``{{1}}``, ``{{2}}``... in order. ``url_button_parameter`` is the dynamic suffix of
    the template's URL button (index 0), e.g. the cart token. ``header_image_url`` fills an
    image header, if the template has one.
    """

    message_id: str
    to: str
    template_name: str
    language_code: str
    body_parameters: tuple[str, ...] = ()
    url_button_parameter: str | None = None
    header_image_url: str | None = None


def template_body(msg: OutgoingWhatsApp) -> dict[str, Any]:
    """The JSON body of the send, in the order of the sample request.

    Raises :class:`PermanentSendError` ``whatsapp.invalid_message`` for a message Meta would
    refuse anyway (bad number, empty or multi-line parameter): no point sending it.
    """
    to = _TO.fullmatch(msg.to)
    if to is None:
        raise PermanentSendError(
            f"{PROVIDER}.invalid_message", "to must be an E.164 number as digits"
        )
    if not msg.template_name or not msg.language_code:
        raise PermanentSendError(
            f"{PROVIDER}.invalid_message", "template name and language are required"
        )
    texts = list(msg.body_parameters)
    if msg.url_button_parameter is not None:
        texts.append(msg.url_button_parameter)
    for index, text in enumerate(texts, start=1):
        if not text.strip() or _BAD_PARAMETER.search(text):
            raise PermanentSendError(
                f"{PROVIDER}.invalid_message",
                f"parameter {index} is empty, multi-line or has more than 4 spaces in a row",
            )

    components: list[dict[str, Any]] = []
    if msg.header_image_url is not None:
        components.append(
            {
                "type": "header",
                "parameters": [{"type": "image", "image": {"link": msg.header_image_url}}],
            }
        )
    if msg.body_parameters:
        components.append(
            {
                "type": "body",
                "parameters": [{"type": "text", "text": text} for text in msg.body_parameters],
            }
        )
    if msg.url_button_parameter is not None:
        components.append(
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": msg.url_button_parameter}],
            }
        )
    template: dict[str, Any] = {"name": msg.template_name, "language": {"code": msg.language_code}}
    if components:
        template["components"] = components
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to.group(1),
        "type": "template",
        "template": template,
    }


def error_for_code(
    code: int, reason: str, *, retry_after: float | None = None
) -> TransientSendError | PermanentSendError:
    """Classify a Cloud API error code (from a send answer or a status webhook)."""
    if code in TRANSIENT_CODES:
        return TransientSendError(f"{PROVIDER}.{code}", reason, retry_after=retry_after)
    return PermanentSendError(f"{PROVIDER}.{code}", reason)


class WhatsAppCloud:
    """Sends template messages from one WhatsApp Business phone number. Thread-safe.

    ``client`` is injectable (tests point ``base_url`` at a local stand-in); a client made
    here is closed by :meth:`close`, an injected one is left to its owner.
    """

    name = PROVIDER

    def __init__(
        self,
        phone_number_id: str,
        access_token: str,
        *,
        base_url: str = GRAPH_API,
        api_version: str = GRAPH_API_VERSION,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_WHATSAPP_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        if not access_token:
            raise ValueError("access_token is required")
        self._url = f"{base_url.rstrip('/')}/{api_version.strip('/')}/{phone_number_id}/messages"
        self._token = access_token
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"WhatsAppCloud(url={self._url!r}, access_token='***')"

    def send(self, msg: OutgoingWhatsApp) -> SendResult:
        body = template_body(msg)
        try:
            response = self._client.post(
                self._url, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            failure = _with_reason(transport_error(self.name, exc), self._mask)
            log.warning("whatsapp.send_failed", extra={"provider": self.name, "code": failure.code})
            raise failure from exc
        if 200 <= response.status_code < 300:
            return self._result(response)
        error = self._error(response)
        log.warning("whatsapp.send_failed", extra={"provider": self.name, "code": error.code})
        raise error

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _result(self, response: httpx.Response) -> SendResult:
        messages = json_object(response).get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        wamid = first.get("id") if isinstance(first, dict) else None
        if not isinstance(wamid, str) or not wamid:
            # Meta took the request (2xx) but we cannot read it: the message may exist.
            raise SendOutcomeUnknown(f"{PROVIDER}.bad_response", "2xx without messages[0].id")
        status = first.get("message_status") if isinstance(first, dict) else None
        return SendResult(
            provider=self.name,
            provider_message_id=wamid,
            detail=status if isinstance(status, str) else "",
        )

    def _error(self, response: httpx.Response) -> TransientSendError | PermanentSendError:
        status = response.status_code
        error = json_object(response).get("error")
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        reason = self._mask(_reason(error, response))
        wait = retry_after(response, self._clock.now())
        coded = isinstance(code, int) and not isinstance(code, bool)
        if coded and code in TRANSIENT_CODES:
            return error_for_code(code, reason, retry_after=wait)
        if status == 429 or status >= 500:
            return TransientSendError(f"{PROVIDER}.http_{status}", reason, retry_after=wait)
        if coded:
            return PermanentSendError(f"{PROVIDER}.{code}", reason)
        # 401/403/404 without a Graph code: bad token or phone number id; retrying won't help.
        return PermanentSendError(f"{PROVIDER}.http_{status}", reason)

    def _mask(self, text: str) -> str:
        return text.replace(self._token, "***")


def _reason(error: dict[str, Any], response: httpx.Response) -> str:
    message = error.get("message")
    reason = message if isinstance(message, str) and message else response.reason_phrase
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    if isinstance(details, str) and details and details != reason:
        reason = f"{reason}: {details}"
    return reason or f"HTTP {response.status_code}"


def _with_reason(error: TransientSendError, mask: Callable[[str], str]) -> TransientSendError:
    """The same error (class, code, retry_after) with its reason passed through ``mask``."""
    reason = mask(error.reason)
    if reason == error.reason:
        return error
    if isinstance(error, SendOutcomeUnknown):
        return SendOutcomeUnknown(error.code, reason, retry_after=error.retry_after)
    return TransientSendError(error.code, reason, retry_after=error.retry_after)
