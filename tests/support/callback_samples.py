"""Provider callback samples (shared/samples) and the test keys that sign them.

The HTTP samples are read as raw requests; the signed providers whose real keys we do not
have (SNS, SendGrid, Mailgun) get their sample bodies signed here with throw-away keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
SNS_CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-"
    "f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
MAILGUN_KEY = "key-test-mailgun-signing-0123"


@dataclass(frozen=True)
class HttpSample:
    method: str
    target: str  # path and query, as on the request line
    headers: dict[str, str]
    body: bytes


def http_sample(name: str) -> HttpSample:
    """A ``<name>.txt`` raw HTTP request: request line, headers, blank line, body."""
    raw = (SAMPLES / f"{name}.txt").read_bytes().replace(b"\r\n", b"\n")
    head, _, body = raw.partition(b"\n\n")
    request_line, *header_lines = head.decode("ascii").split("\n")
    method, target, _ = request_line.split(" ")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    return HttpSample(method, target, headers, body.rstrip(b"\n"))


def json_sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text())


# --- Amazon SNS ------------------------------------------------------------------------------


@cache
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def sns_certificate_pem() -> bytes:
    """A self-signed certificate for :func:`sns_key`, as SNS would serve one."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    start = datetime(2020, 1, 1, tzinfo=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(sns_key().public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=36500))
        .sign(sns_key(), hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _sns_string(envelope: dict[str, Any]) -> bytes:
    if envelope["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{envelope[k]}\n" for k in keys if k in envelope).encode()


def sign_sns(envelope: dict[str, Any], *, version: str = "1") -> dict[str, Any]:
    """The envelope with ``SignatureVersion`` ``version`` and a real signature by the test key."""
    signed = {**envelope, "SignatureVersion": version, "SigningCertURL": SNS_CERT_URL}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    raw = sns_key().sign(_sns_string(signed), padding.PKCS1v15(), algorithm)
    signed["Signature"] = base64.b64encode(raw).decode()
    return signed


def ses_envelope(record: Any, topic_arn: str, *, message_id: str = "m-1") -> dict[str, Any]:
    """The sample SNS envelope carrying ``record`` (an SES event) for ``topic_arn``, signed."""
    envelope = json_sample("ses_sns_notification_envelope")
    envelope.update(Message=json.dumps(record), TopicArn=topic_arn, MessageId=message_id)
    return sign_sns(envelope)


def subscription_confirmation(topic_arn: str) -> dict[str, Any]:
    return sign_sns(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
            "TopicArn": topic_arn,
            "Message": f"You have chosen to subscribe to the topic {topic_arn}.",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={topic_arn}&Token=2336412f37fb",
            "Timestamp": "2012-04-26T20:45:04.751Z",
        }
    )


# --- SendGrid ----------------------------------------------------------------------------------


@cache
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_key() -> str:
    """As SendGrid's Mail Settings show it: base64 DER SubjectPublicKeyInfo."""
    der = (
        sendgrid_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sendgrid_headers(body: bytes, timestamp: str = "1735689600") -> dict[str, str]:
    signature = sendgrid_key().sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


# --- Mailgun -----------------------------------------------------------------------------------


def mailgun_body(name: str, *, key: str = MAILGUN_KEY) -> dict[str, Any]:
    """A Mailgun sample with its signature recomputed with ``key`` (the sample's own was
    made with a key we do not have)."""
    body: dict[str, Any] = json_sample("mailgun_webhook_samples")[name]
    signature = body["signature"]
    message = (signature["timestamp"] + signature["token"]).encode()
    signature["signature"] = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    return body


def mailgun_time(body: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(body["signature"]["timestamp"]), UTC)
