"""Amazon SES events through Amazon SNS (integrations.md section 5).

SNS POSTs a JSON envelope (:class:`SnsMessage`). Its ``Signature`` is RSA over a canonical
string of ``Key\\nValue\\n`` lines (:func:`string_to_sign`):

- ``Notification``: Message, MessageId, Subject (if present), Timestamp, TopicArn, Type;
- ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation``: Message, MessageId,
  SubscribeURL, Timestamp, Token, TopicArn, Type.

``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA. The certificate comes from
``SigningCertURL``, fetched only over https from ``sns.<region>.amazonaws.com``
(:func:`is_sns_url`) by an injectable fetcher (:func:`verify`). A valid signature only
proves that *some* SNS topic sent it: the caller must also check ``TopicArn``.

A confirmed subscription's ``Message`` is an SES event record, ``eventType`` (configuration
sets) or ``notificationType`` (identity feedback): :func:`parse_events`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cartback.channels.inbound import _json
from cartback.channels.inbound.email import EmailEvent, EmailEventKind
from cartback.channels.inbound.errors import InvalidCallback

__all__ = [
    "MESSAGE_TYPE_HEADER",
    "CertificateCache",
    "CertificateFetcher",
    "CertificateUnavailable",
    "SnsMessage",
    "confirm_subscription",
    "fetch_certificate",
    "is_sns_url",
    "parse_envelope",
    "parse_events",
    "string_to_sign",
    "verify",
]

MESSAGE_TYPE_HEADER = "x-amz-sns-message-type"
NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
_TYPES = frozenset({NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION})
_SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+)+-\d\.amazonaws\.com")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE_BYTES = 16_384
SNS_TIMEOUT = httpx.Timeout(5.0, connect=3.0)

# Fetches a PEM certificate for a URL that passed :func:`is_sns_url`; raises on failure.
CertificateFetcher = Callable[[str], bytes]


class CertificateUnavailable(RuntimeError):
    """The signing certificate could not be fetched: try again later (not a forgery)."""


@dataclass(frozen=True, slots=True)
class SnsMessage:
    type: str
    message_id: str
    topic_arn: str
    message: str
    timestamp: str
    signature_version: str
    signature: str
    signing_cert_url: str
    subject: str | None = None
    subscribe_url: str | None = None
    token: str | None = None


def parse_envelope(body: bytes) -> SnsMessage:
    data = _json.obj(_json.load(body), "body")
    kind = _json.text(data, "Type", "")
    if kind not in _TYPES:
        raise InvalidCallback(f"Type {kind!r} is not an SNS message type", code="invalid_field")
    confirming = kind != NOTIFICATION
    return SnsMessage(
        type=kind,
        message_id=_json.text(data, "MessageId", ""),
        topic_arn=_json.text(data, "TopicArn", ""),
        message=_json.text(data, "Message", ""),
        timestamp=_json.text(data, "Timestamp", ""),
        signature_version=_json.text(data, "SignatureVersion", ""),
        signature=_json.text(data, "Signature", ""),
        signing_cert_url=_json.text(data, "SigningCertURL", ""),
        subject=data.get("Subject") if isinstance(data.get("Subject"), str) else None,
        subscribe_url=_json.text(data, "SubscribeURL", "") if confirming else None,
        token=_json.text(data, "Token", "") if confirming else None,
    )


def string_to_sign(message: SnsMessage) -> bytes:
    if message.type == NOTIFICATION:
        pairs = [("Message", message.message), ("MessageId", message.message_id)]
        if message.subject is not None:
            pairs.append(("Subject", message.subject))
        pairs += [
            ("Timestamp", message.timestamp),
            ("TopicArn", message.topic_arn),
            ("Type", message.type),
        ]
    else:
        pairs = [
            ("Message", message.message),
            ("MessageId", message.message_id),
            ("SubscribeURL", message.subscribe_url or ""),
            ("Timestamp", message.timestamp),
            ("Token", message.token or ""),
            ("TopicArn", message.topic_arn),
            ("Type", message.type),
        ]
    return "".join(f"{key}\n{value}\n" for key, value in pairs).encode("utf-8")


def is_sns_url(url: str) -> bool:
    """An https URL on ``sns.<region>.amazonaws.com`` (default port, no credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and "@" not in parts.netloc
        and port in (None, 443)
        and _SNS_HOST.fullmatch(parts.hostname or "") is not None
    )


def verify(message: SnsMessage, fetch: CertificateFetcher) -> bool:
    """True when SNS signed ``message``. Raises :class:`CertificateUnavailable` when the
    certificate cannot be had; a certificate URL that is not SNS's is simply False."""
    algorithm = _HASHES.get(message.signature_version)
    if algorithm is None or not is_sns_url(message.signing_cert_url):
        return False
    if message.type != NOTIFICATION and not is_sns_url(message.subscribe_url or ""):
        return False
    try:
        signature = base64.b64decode(message.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        pem = fetch(message.signing_cert_url)
    except Exception as exc:
        raise CertificateUnavailable(f"SNS certificate unavailable: {type(exc).__name__}") from None
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, UnicodeEncodeError):
        return False
    return True


def fetch_certificate(url: str) -> bytes:
    """GET the PEM certificate (no redirects, short timeouts, a size cap)."""
    if not is_sns_url(url):
        raise ValueError("not an SNS certificate URL")
    with httpx.Client(timeout=SNS_TIMEOUT, follow_redirects=False) as client:
        response = client.get(url)
    response.raise_for_status()
    if len(response.content) > MAX_CERTIFICATE_BYTES:
        raise ValueError("the certificate is too large")
    return response.content


class CertificateCache:
    """Remembers up to ``size`` certificates by URL: SNS signs with few certificates and
    names a new URL when it rotates one. Thread-safe."""

    def __init__(self, fetch: CertificateFetcher = fetch_certificate, *, size: int = 16) -> None:
        self._fetch = fetch
        self._size = size
        self._known: OrderedDict[str, bytes] = OrderedDict()
        self._lock = Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            if url in self._known:
                self._known.move_to_end(url)
                return self._known[url]
        pem = self._fetch(url)
        with self._lock:
            self._known[url] = pem
            while len(self._known) > self._size:
                self._known.popitem(last=False)
        return pem


def confirm_subscription(url: str) -> None:
    """GET the ``SubscribeURL`` (SNS's own host only), which confirms the subscription."""
    if not is_sns_url(url):
        raise ValueError("not an SNS URL")
    with httpx.Client(timeout=SNS_TIMEOUT, follow_redirects=False) as client:
        client.get(url).raise_for_status()


def parse_events(message: str) -> list[EmailEvent]:
    """The SES record in a notification's ``Message``, one event per recipient. A
    message that is not an SES event (e.g. SES's own "AmazonSnsSubscriptionSucceeded"
    notice) gives no events."""
    record = _json.obj(_json.load(message), "Message")
    kind = record.get("eventType") or record.get("notificationType")
    found_mail = record.get("mail")
    mail: dict[str, Any] = found_mail if isinstance(found_mail, dict) else {}
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        return []
    return [
        EmailEvent(
            provider="ses",
            kind=event_kind,
            address=address,
            provider_message_id=_json.optional_text(mail, "messageId"),
            occurred_at=_json.from_iso(when),
            detail=detail,
            message_id_header=_message_id_header(mail),
        )
        for event_kind, address, when, detail in reader(record, mail)
    ]


_Found = list[tuple[EmailEventKind, str, Any, str | None]]


def _bounce(record: dict[str, Any], mail: dict[str, Any]) -> _Found:
    bounce = _json.obj(record.get("bounce"), "Message.bounce")
    bounce_type = str(bounce.get("bounceType", ""))
    kind = EmailEventKind.HARD_BOUNCE if bounce_type == "Permanent" else EmailEventKind.SOFT_BOUNCE
    found: _Found = []
    recipients = _json.array(bounce.get("bouncedRecipients", []), "bounce.bouncedRecipients")
    for recipient in recipients:
        if not isinstance(recipient, dict):
            continue
        address = _json.optional_text(recipient, "emailAddress")
        diagnostic = recipient.get("diagnosticCode") or recipient.get("status")
        detail = f"{bounce_type}/{bounce.get('bounceSubType', '')}"
        if diagnostic:
            detail += f": {diagnostic}"
        if address:
            found.append((kind, address, bounce.get("timestamp"), detail))
    return found


def _complaint(record: dict[str, Any], mail: dict[str, Any]) -> _Found:
    complaint = _json.obj(record.get("complaint"), "Message.complaint")
    feedback = complaint.get("complaintFeedbackType")
    # "not-spam": the recipient's provider reports the message as NOT spam
    kind = EmailEventKind.OTHER if feedback == "not-spam" else EmailEventKind.COMPLAINT
    detail = f"feedback type: {feedback}" if feedback else None
    recipients = _json.array(
        complaint.get("complainedRecipients", []), "complaint.complainedRecipients"
    )
    addresses = [
        _json.optional_text(recipient, "emailAddress")
        for recipient in recipients
        if isinstance(recipient, dict)
    ]
    return [(kind, a, complaint.get("timestamp"), detail) for a in addresses if a]


def _delivery(record: dict[str, Any], mail: dict[str, Any]) -> _Found:
    delivery = _json.obj(record.get("delivery"), "Message.delivery")
    response = delivery.get("smtpResponse")
    return [
        (EmailEventKind.DELIVERED, address, delivery.get("timestamp"), response)
        for address in _json.array(delivery.get("recipients", []), "delivery.recipients")
        if isinstance(address, str) and address
    ]


def _destinations(kind: EmailEventKind, section: str) -> Callable[..., _Found]:
    def read(record: dict[str, Any], mail: dict[str, Any]) -> _Found:
        part = record.get(section)
        when = part.get("timestamp") if isinstance(part, dict) else mail.get("timestamp")
        destination = mail.get("destination")
        addresses = destination if isinstance(destination, list) else []
        return [(kind, a, when, None) for a in addresses if isinstance(a, str) and a]

    return read


_READERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], _Found]] = {
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Delivery": _delivery,
    "Open": _destinations(EmailEventKind.OPENED, "open"),
    "Click": _destinations(EmailEventKind.CLICKED, "click"),
    "Reject": _destinations(EmailEventKind.DROPPED, "reject"),
    "DeliveryDelay": _destinations(EmailEventKind.DEFERRED, "deliveryDelay"),
}


def _message_id_header(mail: dict[str, Any]) -> str | None:
    headers = mail.get("headers")
    if not isinstance(headers, list):
        return None
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            value = header.get("value")
            return value.strip() if isinstance(value, str) and value.strip() else None
    return None
