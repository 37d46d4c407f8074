"""Send a push notification to an app through Firebase Cloud Messaging HTTP v1 (integrations.md
section 4).

Two requests, both JSON over httpx:

1. ``POST <token_url>`` (the service account's ``token_uri``), the OAuth2 JWT bearer grant
   (RFC 7523): ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``,
   the JWT signed RS256 (PyJWT) with the service account's ``private_key`` over
   ``{"iss": client_email, "sub": client_email, "aud": <token_url>, "scope":
   "https://www.googleapis.com/auth/firebase.messaging", "iat": now, "exp": now + 1 h}``.
   The answer ``{"access_token", "expires_in", "token_type": "Bearer"}`` is cached, for all
   threads, until 5 minutes before it expires (or half its life when that is shorter).
2. ``POST https://fcm.googleapis.com/v1/projects/{project_id}/messages:send`` with
   ``Authorization: Bearer <access token>`` and the body of ``fcm_v1_send_request.json``
   (:func:`fcm_message`).

Outcomes (error bodies are google.rpc.Status; the FcmError ``errorCode`` in ``details`` decides):

=============================================  ==============================================
200 with ``name``                              ``SendResult("fcm", name)``
                                               (``projects/<id>/messages/<message id>``)
200 without ``name``                           :class:`SendOutcomeUnknown` ``fcm.bad_response``
``UNREGISTERED`` (404)                         :class:`PushGone` ``fcm.UNREGISTERED``: delete
                                               the token. A 404 without it (a wrong project
                                               id) is a plain permanent ``fcm.http_404``.
``INVALID_ARGUMENT`` (400), e.g. an invalid    :class:`PermanentSendError`
registration token (``message.token``)         ``fcm.INVALID_ARGUMENT``, the field in the reason
``SENDER_ID_MISMATCH`` (403),                  :class:`PermanentSendError` ``fcm.<errorCode>``
``THIRD_PARTY_AUTH_ERROR`` (401: the APNs /
web push credentials in Firebase), other 4xx   (``fcm.http_<status>`` without an errorCode)
401 otherwise (our access token refused)       the cached token is dropped and the send tried
                                               once more with a new one; a second 401 is
                                               :class:`PermanentSendError` ``fcm.http_401``
``QUOTA_EXCEEDED`` / 429, ``UNAVAILABLE`` /    :class:`TransientSendError` ``fcm.<errorCode>``
``INTERNAL`` / 5xx                             (or ``fcm.http_<status>``), ``retry_after``
                                               from ``Retry-After``
token endpoint: 400/401 ``invalid_grant``      :class:`PermanentSendError`
(revoked key, bad signature, clock skew)       ``fcm.token_invalid_grant``, nothing sent
token endpoint: any other failure              :class:`TransientSendError`
                                               ``fcm.token_http_<status>`` /
                                               ``fcm.token_bad_response`` /
                                               ``fcm.token_connect|token_timeout|
                                               token_transport``, nothing sent
connect failure / connect timeout (send)       :class:`TransientSendError` ``fcm.connect`` /
                                               ``fcm.timeout``
timeout or dropped connection after sending    :class:`SendOutcomeUnknown`
                                               ``fcm.timeout_after_send`` /
                                               ``fcm.dropped_after_send``
=============================================  ==============================================

Firebase advises deleting a token after INVALID_ARGUMENT too, but only when the message is
known to be valid; the reason names the offending field so a caller can tell.

Secrets: the service account's private key, the signed assertion and the access token never
appear in an error, a log record or a ``repr``; transport errors are re-raised ``from None``
(httpx's exception carries the request and its headers). Registration tokens are personal
identifiers: errors and log records do not contain them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cartback.channels.base import (
    ChannelError,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from cartback.channels.push import DEFAULT_PUSH_TIMEOUT, OutgoingPush, PushGone
from cartback.channels.sms import SendOutcomeUnknown, json_object, retry_after, transport_error
from cartback.core.clock import Clock, SystemClock

__all__ = [
    "FCM_SCOPE",
    "FCM_SEND_URL",
    "FcmSender",
    "assertion_claims",
    "fcm_message",
]

log = logging.getLogger(__name__)

PROVIDER = "fcm"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_SEND_URL = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google refuses assertions that live longer than an hour.
ASSERTION_LIFETIME = timedelta(hours=1)
# Refresh before expiry so a token does not run out between the check and FCM reading it.
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
MAX_REASON_CHARS = 200

# As in fcm_v1_send_request.json: what the apps listen for.
ANDROID_CLICK_ACTION = "OPEN_CART"
APNS_THREAD_ID = "cart"
DATA_TYPE = "abandoned_cart"
# APNs priority 5 = "normal": delivered with the device's power considerations, like Urgency.
APNS_PRIORITY_NORMAL = "5"

# FcmError codes worth another try later; everything else in 4xx is about this message.
_TRANSIENT_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
_REDACTED = "<redacted>"


def fcm_message(token: str, push: OutgoingPush, now: datetime) -> dict[str, Any]:
    """The v1 send body, shaped and ordered like ``fcm_v1_send_request.json``.

    ``data`` (string values only) carries our ``message_id``, the ``recover_url`` and the
    ``type``; the TTL is given to each platform in its own form (``"86400s"``, an APNs
    expiration as unix seconds, the web push ``TTL`` header).
    """
    notification = {"title": push.title, "body": push.body}
    if push.icon_url is not None:
        notification["image"] = push.icon_url
    ttl = push.ttl_seconds
    # APNs: 0 means "deliver once, do not store", like a TTL of 0 elsewhere.
    apns_expiration = str(int(now.timestamp()) + ttl) if ttl else "0"
    return {
        "message": {
            "token": token,
            "notification": notification,
            "data": {"message_id": push.message_id, "recover_url": push.url, "type": DATA_TYPE},
            "android": {
                "priority": "normal",
                "ttl": f"{ttl}s",
                "notification": {"click_action": ANDROID_CLICK_ACTION},
            },
            "apns": {
                "headers": {
                    "apns-priority": APNS_PRIORITY_NORMAL,
                    "apns-expiration": apns_expiration,
                },
                "payload": {"aps": {"thread-id": APNS_THREAD_ID}},
            },
            "webpush": {
                "headers": {"TTL": str(ttl), "Urgency": "normal"},
                "fcm_options": {"link": push.url},
            },
        }
    }


def assertion_claims(client_email: str, token_url: str, now: datetime) -> dict[str, Any]:
    """The RFC 7523 assertion's claims, valid for :data:`ASSERTION_LIFETIME` from ``now``."""
    issued = int(now.timestamp())
    return {
        "iss": client_email,
        "sub": client_email,
        "aud": token_url,
        "scope": FCM_SCOPE,
        "iat": issued,
        "exp": issued + int(ASSERTION_LIFETIME.total_seconds()),
    }


@dataclass(frozen=True, slots=True)
class _AccessToken:
    value: str
    refresh_at: datetime


class FcmSender:
    """Sends notifications to registration tokens of one Firebase project. Thread-safe.

    ``service_account`` is the service account key file's JSON (``client_email``,
    ``private_key``, ``private_key_id``, ``token_uri``). ``token_url`` and ``send_url``
    override Google's (tests point them at local stand-ins). ``client`` is injectable; a
    client made here is closed by :meth:`close`, an injected one is left to its owner.
    """

    name = PROVIDER

    def __init__(
        self,
        project_id: str,
        service_account: Mapping[str, Any],
        *,
        token_url: str | None = None,
        send_url: str | None = None,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_PUSH_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        if not project_id or "/" in project_id:
            raise ValueError("project_id must be a non-empty Firebase project id without '/'")
        self._client_email = _required(service_account, "client_email")
        self._key = _load_private_key(_required(service_account, "private_key"))
        key_id = service_account.get("private_key_id")
        self._key_headers = {"kid": key_id} if isinstance(key_id, str) and key_id else None
        self._token_url = token_url or _required(service_account, "token_uri")
        self._send_url = send_url or FCM_SEND_URL.format(project_id=project_id)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._token: _AccessToken | None = None

    def __repr__(self) -> str:
        return f"FcmSender(send_url={self._send_url!r}, private_key={_REDACTED!r})"

    def send(self, token: str, push: OutgoingPush) -> SendResult:
        if not token.strip():
            raise PermanentSendError(f"{PROVIDER}.invalid_token", "registration token is empty")
        body = fcm_message(token, push, self._clock.now())
        access = self._access_token()
        response = self._post(body, access)
        if response.status_code == 401 and _fcm_error_code(response) != "THIRD_PARTY_AUTH_ERROR":
            # Our token was revoked or expired early: one new token, one more try.
            self._forget(access)
            response = self._post(body, self._access_token())
        if response.is_success:
            return _result(response)
        error = _error(response, self._clock.now(), token)
        _log_failure("fcm.send_failed", error)
        raise error

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _post(self, body: dict[str, Any], access: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {access}"}
        try:
            return self._client.post(
                self._send_url, json=body, headers=headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            failure = transport_error(PROVIDER, exc)
            _log_failure("fcm.send_failed", failure)
            # Not chained: the httpx exception carries the request and its bearer token.
            raise failure from None

    def _access_token(self) -> str:
        """The cached access token, or a new one. One thread fetches; the others wait for it."""
        with self._lock:
            now = self._clock.now()
            if self._token is None or now >= self._token.refresh_at:
                self._token = self._fetch_token(now)
            return self._token.value

    def _forget(self, access: str) -> None:
        with self._lock:
            if self._token is not None and self._token.value == access:
                self._token = None

    def _fetch_token(self, now: datetime) -> _AccessToken:
        assertion = jwt.encode(
            assertion_claims(self._client_email, self._token_url, now),
            self._key,
            algorithm="RS256",
            headers=self._key_headers,
        )
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
        try:
            response = self._client.post(self._token_url, data=form, timeout=self._timeout)
        except httpx.TransportError as exc:
            failure = _token_transport_error(exc)
            _log_failure("fcm.token_failed", failure)
            raise failure from None
        try:
            return _read_token(response, now)
        except ChannelError as error:
            _log_failure("fcm.token_failed", error)
            raise


def _read_token(response: httpx.Response, now: datetime) -> _AccessToken:
    """The token endpoint's answer as a token to cache; raises the error it means otherwise."""
    if response.status_code != 200:
        raise _token_error(response, now)
    data = json_object(response)
    value = data.get("access_token")
    expires_in = data.get("expires_in")
    if (
        not isinstance(value, str)
        or not value
        or isinstance(expires_in, bool)
        or not isinstance(expires_in, int | float)
        or expires_in <= 0
    ):
        raise TransientSendError(f"{PROVIDER}.token_bad_response", "no access_token/expires_in")
    lifetime = timedelta(seconds=expires_in)
    return _AccessToken(value, now + lifetime - min(TOKEN_REFRESH_MARGIN, lifetime / 2))


def _token_error(response: httpx.Response, now: datetime) -> ChannelError:
    data = json_object(response)
    error = data.get("error")
    description = data.get("error_description")
    reason = description if isinstance(description, str) and description else str(error)
    if not isinstance(error, str):
        reason = response.reason_phrase or f"HTTP {response.status_code}"
    reason = reason[:MAX_REASON_CHARS]
    if response.status_code in (400, 401) and error == "invalid_grant":
        return PermanentSendError(f"{PROVIDER}.token_invalid_grant", reason)
    code = f"{PROVIDER}.token_http_{response.status_code}"
    return TransientSendError(code, reason, retry_after=retry_after(response, now))


def _token_transport_error(exc: httpx.TransportError) -> TransientSendError:
    """Nothing was sent to FCM yet, so even a timeout after writing is plainly transient."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransientSendError(f"{PROVIDER}.token_timeout", f"token endpoint timed out ({kind})")
    if isinstance(exc, httpx.ConnectError):
        return TransientSendError(f"{PROVIDER}.token_connect", f"cannot connect ({kind})")
    return TransientSendError(f"{PROVIDER}.token_transport", f"token request failed ({kind})")


def _result(response: httpx.Response) -> SendResult:
    name = json_object(response).get("name")
    if not isinstance(name, str) or not name:
        # FCM accepted the request but we cannot read the message: it may exist.
        raise SendOutcomeUnknown(f"{PROVIDER}.bad_response", "2xx without name")
    return SendResult(provider=PROVIDER, provider_message_id=name)


def _error(
    response: httpx.Response, now: datetime, token: str
) -> TransientSendError | PermanentSendError:
    status = response.status_code
    fcm_code = _fcm_error_code(response)
    code = f"{PROVIDER}.{fcm_code}" if fcm_code else f"{PROVIDER}.http_{status}"
    reason = _reason(response).replace(token, _REDACTED)
    if fcm_code == "UNREGISTERED":
        return PushGone(code, reason)
    if fcm_code in _TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientSendError(code, reason, retry_after=retry_after(response, now))
    return PermanentSendError(code, reason)


def _status_error(response: httpx.Response) -> dict[str, Any]:
    error = json_object(response).get("error")
    return error if isinstance(error, dict) else {}


def _details(response: httpx.Response) -> list[dict[str, Any]]:
    details = _status_error(response).get("details")
    if not isinstance(details, list):
        return []
    return [detail for detail in details if isinstance(detail, dict)]


def _fcm_error_code(response: httpx.Response) -> str | None:
    for detail in _details(response):
        code = detail.get("errorCode")
        if detail.get("@type") == _FCM_ERROR_TYPE and isinstance(code, str) and code:
            return code
    return None


def _reason(response: httpx.Response) -> str:
    """``message`` of the Status, plus ``field: description`` of each field violation."""
    message = _status_error(response).get("message")
    reason = message if isinstance(message, str) and message else response.reason_phrase
    violations = [
        f"{violation.get('field')}: {violation.get('description')}"
        for detail in _details(response)
        if detail.get("@type") == _BAD_REQUEST_TYPE
        for violation in detail.get("fieldViolations") or ()
        if isinstance(violation, dict)
    ]
    if violations:
        reason = f"{reason} ({'; '.join(violations)})"
    return (reason or f"HTTP {response.status_code}")[:MAX_REASON_CHARS]


def _required(service_account: Mapping[str, Any], key: str) -> str:
    value = service_account.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"service_account needs a non-empty {key!r}")
    return value


def _load_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError("service_account private_key is not a readable PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("service_account private_key must be an RSA key")
    return key


def _log_failure(event: str, error: ChannelError) -> None:
    log.warning(event, extra={"provider": PROVIDER, "code": error.code})
