from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cartback.channels import OutgoingPush, WebPushSender, WebPushTarget
from cartback.channels.webpush import (
    MAX_PAYLOAD_BYTES,
    load_vapid_key,
    push_payload,
    vapid_claims,
)
from support.push_services import SUBJECT, VAPID_KEY, VAPID_PEM, VAPID_PUBLIC, VAPID_RAW

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _private_value(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


def test_the_payload_is_compact_utf8_json_in_a_fixed_order() -> None:
    push = OutgoingPush("m1", "Dein Warenkorb", "Grüße 🛒", "https://s.example/r/1")

    assert (
        push_payload(push)
        == (
            '{"title":"Dein Warenkorb","body":"Grüße 🛒","url":"https://s.example/r/1",'
            '"icon":null,"message_id":"m1"}'
        ).encode()
    )


def test_the_largest_payload_that_fits_in_4096_encrypted_bytes() -> None:
    assert MAX_PAYLOAD_BYTES == 4096 - 86 - 16 - 1 == 3993


@pytest.mark.parametrize(
    ("endpoint", "aud"),
    [
        ("https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHq", "https://fcm.googleapis.com"),
        (
            "https://updates.push.services.mozilla.com/wpush/v2/gAAA",
            "https://updates.push.services.mozilla.com",
        ),
        ("https://push.example:443/a", "https://push.example"),
        ("https://push.example:8443/a/b?c=d", "https://push.example:8443"),
        ("HTTPS://Web.Push.Apple.com/QGx", "https://web.push.apple.com"),
    ],
)
def test_vapid_claims_are_for_the_endpoint_origin_for_12_hours(endpoint: str, aud: str) -> None:
    assert vapid_claims(endpoint, SUBJECT, NOW) == {
        "aud": aud,
        "exp": 1767646800,  # 2026-01-05 21:00 UTC
        "sub": SUBJECT,
    }


def test_pem_sec1_pem_and_raw_keys_are_the_same_key() -> None:
    sec1 = VAPID_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()

    keys = [load_vapid_key(text) for text in (VAPID_PEM, f"\n{sec1}\n", VAPID_RAW)]

    assert {_private_value(key) for key in keys} == {_private_value(VAPID_KEY)}


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(
    "key",
    [
        _pem(ec.generate_private_key(ec.SECP384R1())),
        VAPID_PEM.replace("PRIVATE KEY-----\n", "PRIVATE KEY-----\nAAAA", 1),
        VAPID_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        ).decode(),
        VAPID_RAW[:-2],
        "A" * 43,  # 32 zero bytes: not a valid private key
        "not base64 at all!",
        "",
    ],
    ids=["p384", "corrupt-pem", "encrypted-pem", "31-bytes", "zero", "garbage", "empty"],
)
def test_other_keys_are_refused_without_quoting_them(key: str) -> None:
    with pytest.raises(ValueError) as raised:
        load_vapid_key(key)

    shown = "".join(traceback.format_exception(raised.value))  # chained errors included
    assert not [line for line in key.splitlines()[1:-1] or [key] if line and line in shown]


def test_a_target_from_the_browsers_subscription_json(samples_dir: Path) -> None:
    sample = json.loads((samples_dir / "webpush_subscription.json").read_text())

    target = WebPushTarget.from_subscription(sample)

    assert (target.endpoint, target.p256dh, target.auth) == (
        sample["endpoint"],
        sample["keys"]["p256dh"],
        sample["keys"]["auth"],
    )
    assert repr(target) == "WebPushTarget(origin='https://fcm.googleapis.com')"


@pytest.mark.parametrize(
    "subscription",
    [
        {"endpoint": "https://push.example/x"},
        {"endpoint": "https://push.example/x", "keys": {"p256dh": "BCVx"}},
        {"endpoint": None, "keys": {"p256dh": "BCVx", "auth": "BTBZ"}},
    ],
)
def test_a_subscription_without_endpoint_or_keys_is_refused(
    subscription: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        WebPushTarget.from_subscription(subscription)


def test_the_sender_gives_the_application_server_key_and_hides_the_private_one() -> None:
    sender = WebPushSender(VAPID_RAW, SUBJECT)
    sender.close()

    assert sender.application_server_key == VAPID_PUBLIC
    assert VAPID_RAW not in repr(sender)


@pytest.mark.parametrize("subject", ["push@shop.example.com", "http://shop.example.com", ""])
def test_a_subject_push_services_would_refuse_is_refused(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        WebPushSender(VAPID_PEM, subject)
