"""Send SMS with Twilio Programmable Messaging (integrations.md section 3).

``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded ``To``,
``From`` or ``MessagingServiceSid``, ``Body`` and ``StatusCallback``, HTTP Basic auth
``AccountSid:AuthToken`` (an API Key SID:Secret works too: pass it as ``username``/``auth_token``).

Outcomes:

============================================  ============================================
201 with ``sid``                              ``SendResult(provider="twilio", sid)``
400 with code 21211/21408/21608/21610/21612/   :class:`PermanentSendError` ``twilio.<code>``
21614/21635 (and any other 4xx except 429)
429 (Twilio code 20429)                       :class:`TransientSendError` ``twilio.429``,
                                              ``retry_after`` from ``Retry-After``
5xx                                           :class:`TransientSendError` ``twilio.http_<status>``
connect failure / connect timeout             :class:`TransientSendError` ``twilio.connect`` /
                                              ``twilio.timeout``
read timeout after the request was written    :class:`SendOutcomeUnknown`
                                              ``twilio.timeout_after_send``: Twilio may have
                                              created the message; mark it unknown, don't resend
============================================  ============================================

Twilio documents no idempotency key for creating a message, so none is sent; our
``message_id`` travels only in the status callback URL the caller builds.
"""

from __future__ import annotations

import logging

import httpx

from cartback.channels.base import PermanentSendError, SendResult, TransientSendError
from cartback.channels.sms import (
    DEFAULT_SMS_TIMEOUT,
    OutgoingSms,
    SendOutcomeUnknown,
    json_object,
    retry_after,
    transport_error,
)
from cartback.core.clock import Clock, SystemClock

__all__ = ["TwilioSms"]

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"


class TwilioSms:
    """An :class:`~cartback.channels.sms.SmsChannel` for one Twilio account. Thread-safe.

    ``client`` is injectable (tests point ``base_url`` at a local stand-in); a client made
    here is closed by :meth:`close`, an injected one is left to its owner.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        username: str | None = None,
        base_url: str = TWILIO_API,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_SMS_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = httpx.BasicAuth(username or account_sid, auth_token)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._clock = clock or SystemClock()

    def send(self, sms: OutgoingSms) -> SendResult:
        try:
            response = self._client.post(
                self._url, data=form_fields(sms), auth=self._auth, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            error = transport_error(self.name, exc)
            log.warning("sms.send_failed", extra={"provider": self.name, "code": error.code})
            raise error from exc
        if response.status_code in (200, 201):
            return self._result(response)
        raise self._error(response)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _result(self, response: httpx.Response) -> SendResult:
        data = json_object(response)
        sid = data.get("sid")
        if not isinstance(sid, str):
            # Twilio took the request (2xx) but we cannot read it: the message may exist.
            raise SendOutcomeUnknown("twilio.bad_response", "2xx without a message sid")
        return SendResult(
            provider=self.name, provider_message_id=sid, detail=str(data.get("status", ""))
        )

    def _error(self, response: httpx.Response) -> TransientSendError | PermanentSendError:
        data = json_object(response)
        status = response.status_code
        message = str(data.get("message") or response.reason_phrase)
        if status == 429:
            wait = retry_after(response, self._clock.now())
            return TransientSendError("twilio.429", message, retry_after=wait)
        if status >= 500:
            return TransientSendError(f"twilio.http_{status}", message)
        code = data.get("code")
        if isinstance(code, int):
            return PermanentSendError(f"twilio.{code}", message)
        # 401/403/404 without a Twilio code: bad credentials or account; retrying will not help.
        return PermanentSendError(f"twilio.http_{status}", message)


def form_fields(sms: OutgoingSms) -> dict[str, str]:
    """The form Twilio expects, in the order of the sample request (``To`` first)."""
    fields = {"To": sms.to_number}
    if sms.from_number is not None:
        fields["From"] = sms.from_number
    else:
        fields["MessagingServiceSid"] = sms.messaging_service_sid or ""
    fields["Body"] = sms.body
    if sms.status_callback_url is not None:
        fields["StatusCallback"] = sms.status_callback_url
    return fields
