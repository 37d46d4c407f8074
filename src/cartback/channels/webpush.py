"""Send a Web Push notification to a browser's push subscription (integrations.md section 4).

``POST <subscription endpoint>`` (RFC 8030) with::

    TTL: <ttl_seconds>                 always explicit (a missing TTL means 0 to some services)
    Urgency: normal
    Content-Encoding: aes128gcm        RFC 8291 payload encryption (pywebpush's WebPusher)
    Content-Type: application/octet-stream
    Authorization: vapid t=<JWT>,k=<application server public key>   RFC 8292 (py-vapid)

The JWT is ES256 over ``{"aud": <endpoint origin>, "exp": now + 12 h, "sub": <subject>}``.
The encrypted payload is the JSON ``{"title", "body", "url", "icon", "message_id"}`` that the
site's service worker shows (``icon`` is null without an ``icon_url``). pywebpush would send
with ``requests``; we only use it to encrypt and send with httpx ourselves.

Outcomes:

=============================================  ==============================================
2xx (201 Created)                              ``SendResult("webpush", <Location header>)``
404, 410                                       :class:`PushGone` ``webpush.404|410``: the
                                               subscription expired or was revoked; delete it
429 (``Retry-After`` honoured)                 :class:`TransientSendError` ``webpush.429``
5xx (``Retry-After`` honoured)                 :class:`TransientSendError` ``webpush.<status>``
413 payload too large, other 4xx (400, a      :class:`PermanentSendError` ``webpush.<status>``
VAPID key the subscription was not made for:
401/403), 3xx (redirects are not followed)
malformed subscription (endpoint, p256dh,      :class:`PermanentSendError`
auth)                                          ``webpush.invalid_subscription``, nothing sent
payload over 3993 bytes (RFC 8291: 4096        :class:`PermanentSendError`
bytes encrypted)                               ``webpush.payload_too_large``, nothing sent
connect failure / connect timeout              :class:`TransientSendError` ``webpush.connect``
                                               / ``webpush.timeout``
timeout or dropped connection after sending    :class:`SendOutcomeUnknown`
                                               ``webpush.timeout_after_send`` /
                                               ``webpush.dropped_after_send``
=============================================  ==============================================

Secrets: the VAPID private key is never in an error, a log record or a ``repr``. The
endpoint URL is a capability (whoever holds it and the keys can push to that browser), so it
is not either: errors and our log records name only its origin, transport errors are
re-raised ``from None``, and a filter on the ``httpx`` logger rewrites the endpoint this
thread is sending to as ``<origin>/<redacted>`` in its "HTTP Request: POST <url>" line.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]

from cartback.channels.base import (
    ChannelError,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from cartback.channels.push import DEFAULT_PUSH_TIMEOUT, OutgoingPush, PushGone
from cartback.channels.sms import json_object, retry_after, transport_error
from cartback.core.clock import Clock, SystemClock

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "VAPID_LIFETIME",
    "WebPushSender",
    "WebPushTarget",
    "load_vapid_key",
    "push_payload",
    "vapid_claims",
]

log = logging.getLogger(__name__)

PROVIDER = "webpush"
# RFC 8292 allows at most 24 h; 12 h (as pywebpush does) leaves room for clock skew.
VAPID_LIFETIME = timedelta(hours=12)
# RFC 8291 section 4: services must accept 4096 bytes of encrypted body = 86-byte aes128gcm
# header (salt, rs, idlen, keyid) + plaintext + 1 padding delimiter + 16-byte tag.
MAX_PAYLOAD_BYTES = 4096 - 86 - 1 - 16
MAX_REASON_CHARS = 200

_REDACTED = "<redacted>"
_P256_POINT_BYTES = 65
_AUTH_SECRET_BYTES = 16
_RAW_PRIVATE_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class WebPushTarget:
    """A browser's push subscription, as in ``PushSubscription.toJSON()``.

    ``endpoint`` is the push resource URL, ``p256dh`` the browser's P-256 public key
    (uncompressed point, base64url) and ``auth`` its 16-byte auth secret (base64url).
    Checked when sent: a malformed one fails as ``webpush.invalid_subscription``.
    """

    endpoint: str
    p256dh: str
    auth: str

    def __repr__(self) -> str:
        return f"WebPushTarget(origin={_origin_or_none(self.endpoint)!r})"

    @classmethod
    def from_subscription(cls, data: Mapping[str, Any]) -> WebPushTarget:
        """From the JSON a browser gives (``webpush_subscription.json``), e.g.
        ``{"endpoint": "https://fcm.googleapis.com/fcm/send/dpH5...", "expirationTime": null,
        "keys": {"p256dh": "BCVx...", "auth": "BTBZ..."}}``.
        """
        keys = data.get("keys")
        endpoint = data.get("endpoint")
        p256dh = keys.get("p256dh") if isinstance(keys, Mapping) else None
        auth = keys.get("auth") if isinstance(keys, Mapping) else None
        if not (isinstance(endpoint, str) and isinstance(p256dh, str) and isinstance(auth, str)):
            raise ValueError("a subscription needs endpoint, keys.p256dh and keys.auth strings")
        return cls(endpoint=endpoint, p256dh=p256dh, auth=auth)


def push_payload(push: OutgoingPush) -> bytes:
    """The JSON the service worker receives (before encryption), keys in this fixed order."""
    document = {
        "title": push.title,
        "body": push.body,
        "url": push.url,
        "icon": push.icon_url,
        "message_id": push.message_id,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def vapid_claims(endpoint: str, subject: str, now: datetime) -> dict[str, str | int]:
    """RFC 8292 claims: ``aud`` = the endpoint's origin, ``exp`` = now + :data:`VAPID_LIFETIME`.

    For ``https://fcm.googleapis.com/fcm/send/dpH5...`` at 2026-01-05 09:00 UTC:
    ``{"aud": "https://fcm.googleapis.com", "exp": 1767646800, "sub": subject}``.
    """
    return {
        "aud": _origin(httpx.URL(endpoint)),
        "exp": int((now + VAPID_LIFETIME).timestamp()),
        "sub": subject,
    }


def load_vapid_key(key: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID P-256 private key from PEM (PKCS#8 or SEC1) or base64url of its raw 32 bytes.

    Raises ``ValueError`` (never quoting the key) for anything else.
    """
    text = key.strip()
    if text.startswith("-----BEGIN"):
        try:
            private = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError("vapid_private_key is not a readable unencrypted PEM key") from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
            private.curve, ec.SECP256R1
        ):
            raise ValueError("vapid_private_key must be a P-256 (prime256v1) EC key")
        return private
    raw = _b64url_decode(text)
    if raw is None or len(raw) != _RAW_PRIVATE_KEY_BYTES:
        raise ValueError(
            "vapid_private_key must be PEM or base64url of the raw 32-byte P-256 private key"
        )
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise ValueError("vapid_private_key is not a valid P-256 private key") from None


class WebPushSender:
    """Sends web push notifications as one application server (one VAPID key). Thread-safe.

    ``subject`` is the contact push services may use (``mailto:`` or ``https:``).
    :attr:`application_server_key` is the public key browsers subscribe with
    (``pushManager.subscribe({applicationServerKey})``). ``client`` is injectable; a client
    made here is closed by :meth:`close`, an injected one is left to its owner.
    """

    name = PROVIDER

    def __init__(
        self,
        vapid_private_key: str,
        subject: str,
        *,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout = DEFAULT_PUSH_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        self._vapid = Vapid02(load_vapid_key(vapid_private_key))
        self._subject = subject
        self._clock = clock or SystemClock()
        # Sign once now, so a subject py-vapid refuses fails here and not at every send.
        try:
            self._authorization(vapid_claims("https://push.example", subject, self._clock.now()))
        except VapidException:
            raise ValueError("subject must be a mailto: address or an https: URL") from None
        public = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.application_server_key = _b64url_encode(public)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout
        _install_httpx_redaction()

    def __repr__(self) -> str:
        return f"WebPushSender(subject={self._subject!r}, vapid_private_key={_REDACTED!r})"

    def send(self, target: WebPushTarget, push: OutgoingPush) -> SendResult:
        endpoint = _endpoint(target)
        body = _encrypt(target, push)
        try:
            claims = vapid_claims(str(endpoint), self._subject, self._clock.now())
            authorization = self._authorization(claims)
        except VapidException:  # py-vapid signs only for a host name (no IP literal) origin
            raise PermanentSendError(
                f"{PROVIDER}.invalid_subscription", "cannot sign VAPID for the endpoint's origin"
            ) from None
        headers = {
            "TTL": str(push.ttl_seconds),
            "Urgency": "normal",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": authorization,
        }
        _sending.endpoint = str(endpoint)
        try:
            response = self._client.post(
                endpoint, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            failure = transport_error(PROVIDER, exc)
            _log_failure(failure, endpoint)
            # Not chained: the httpx exception carries the request, whose URL is a capability.
            raise failure from None
        finally:
            _sending.endpoint = None
        if response.is_success:
            location = response.headers.get("Location")
            return SendResult(provider=PROVIDER, provider_message_id=location)
        error = _error(response, self._clock.now(), endpoint)
        _log_failure(error, endpoint)
        raise error

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _authorization(self, claims: dict[str, str | int]) -> str:
        header = self._vapid.sign(claims)["Authorization"]
        if not isinstance(header, str):  # py-vapid is untyped; it returns a str
            raise TypeError("py-vapid returned a non-str Authorization header")
        return header


def _log_failure(error: ChannelError, endpoint: httpx.URL) -> None:
    log.warning(
        "webpush.send_failed",
        extra={"provider": PROVIDER, "code": error.code, "origin": _origin(endpoint)},
    )


def _endpoint(target: WebPushTarget) -> httpx.URL:
    try:
        url = httpx.URL(target.endpoint)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("https", "http") or not url.host:
        raise PermanentSendError(
            f"{PROVIDER}.invalid_subscription", "endpoint is not an http(s) URL"
        )
    return url


def _encrypt(target: WebPushTarget, push: OutgoingPush) -> bytes:
    """The aes128gcm body for ``target`` (pywebpush's WebPusher, a fresh ECDH key each time)."""
    payload = push_payload(push)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PermanentSendError(
            f"{PROVIDER}.payload_too_large",
            f"payload is {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES} fit in 4096 encrypted",
        )
    _check_keys(target)
    # Imported here: pywebpush pulls in requests and aiohttp (~0.3 s), which every process
    # importing cartback.channels would pay for without sending a single push.
    from pywebpush import WebPusher  # type: ignore[import-untyped]

    subscription = {
        "endpoint": target.endpoint,
        "keys": {"p256dh": target.p256dh, "auth": target.auth},
    }
    body = WebPusher(subscription).encode(payload, "aes128gcm")["body"]
    if not isinstance(body, bytes):  # pywebpush is untyped; http_ece returns bytes
        raise TypeError("pywebpush returned a non-bytes body")
    return body


def _check_keys(target: WebPushTarget) -> None:
    """pywebpush does not check p256dh (its length test is a no-op), so we do."""
    point = _b64url_decode(target.p256dh)
    auth = _b64url_decode(target.auth)
    problem = None
    if point is None or len(point) != _P256_POINT_BYTES or point[0] != 0x04:
        problem = "p256dh is not an uncompressed P-256 point"
    elif auth is None or len(auth) != _AUTH_SECRET_BYTES:
        problem = "auth is not 16 bytes"
    else:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            problem = "p256dh is not a point on P-256"
    if problem is not None:
        raise PermanentSendError(f"{PROVIDER}.invalid_subscription", problem)


def _error(
    response: httpx.Response, now: datetime, endpoint: httpx.URL
) -> TransientSendError | PermanentSendError:
    status = response.status_code
    code = f"{PROVIDER}.{status}"
    reason = _reason(response, endpoint)
    if status in (404, 410):
        return PushGone(code, reason)
    if status == 429 or status >= 500:
        return TransientSendError(code, reason, retry_after=retry_after(response, now))
    return PermanentSendError(code, reason)


def _reason(response: httpx.Response, endpoint: httpx.URL) -> str:
    """The status line plus the service's message (autopush: JSON ``message``; FCM: text)."""
    message = json_object(response).get("message")
    if not isinstance(message, str):
        is_text = response.headers.get("Content-Type", "").startswith("text/plain")
        message = response.text.strip().splitlines()[0] if is_text and response.text.strip() else ""
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    if message:
        reason = f"{reason}: {message[:MAX_REASON_CHARS]}"
    return _mask(reason, endpoint)


def _mask(text: str, endpoint: httpx.URL) -> str:
    secret_parts = [str(endpoint), endpoint.path]
    last_segment = endpoint.path.rsplit("/", 1)[-1]
    if len(last_segment) >= 8:
        secret_parts.append(last_segment)
    for part in secret_parts:
        if part and part != "/":
            text = text.replace(part, _REDACTED)
    return text


def _origin(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


def _origin_or_none(endpoint: str) -> str | None:
    try:
        return _origin(httpx.URL(endpoint))
    except httpx.InvalidURL:
        return None


def _b64url_decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# The endpoint this thread is sending to: httpx logs its request line in the sending thread.
_sending = threading.local()


class _RedactEndpoint(logging.Filter):
    """Rewrites the endpoint being sent to as ``<origin>/<redacted>`` in httpx's log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        endpoint = getattr(_sending, "endpoint", None)
        if not endpoint or not isinstance(record.args, tuple):
            return True
        if any(endpoint in str(arg) for arg in record.args):
            hidden = f"{_origin(httpx.URL(endpoint))}/{_REDACTED}"
            record.args = tuple(
                str(arg).replace(endpoint, hidden) if endpoint in str(arg) else arg
                for arg in record.args
            )
        return True


_REDACTION = _RedactEndpoint()


def _install_httpx_redaction() -> None:
    logger = logging.getLogger("httpx")
    if _REDACTION not in logger.filters:
        logger.addFilter(_REDACTION)
