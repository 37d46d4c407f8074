"""WhatsApp webhooks: X-Hub-Signature-256 over the real sample, the handshake, statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from cartback.channels.inbound import InvalidCallback
from cartback.channels.inbound import whatsapp as wa
from support.callback_samples import http_sample

APP_SECRET = "test_app_secret"  # the sample's (see its .source.txt)


def test_the_sample_signature_verifies() -> None:
    sample = http_sample("whatsapp_status_webhook_request")

    assert wa.verify_signature(APP_SECRET, sample.body, sample.headers[wa.SIGNATURE_HEADER])


def test_metas_vector() -> None:
    expected = "sha256=5672948d9b0bb8de626568e7e449ed70154217d90c378dcb825cc2135fc649e6"

    assert wa.signature("hush", b'{"id":1}') == expected
    assert wa.verify_signature("hush", b'{"id":1}', expected.upper().replace("SHA256", "sha256"))


@pytest.mark.parametrize(
    ("secret", "body_change", "header"),
    [
        ("other_secret", None, None),
        (APP_SECRET, b" ", None),
        (APP_SECRET, None, ""),
        (APP_SECRET, None, "sha1=2a796792d65e9545cb8a039593864525dcee5d3f"),
        (APP_SECRET, None, "sha256=é"),
    ],
)
def test_a_changed_body_secret_or_header_does_not_verify(
    secret: str, body_change: bytes | None, header: str | None
) -> None:
    sample = http_sample("whatsapp_status_webhook_request")
    body = sample.body + (body_change or b"")
    given = sample.headers[wa.SIGNATURE_HEADER] if header is None else header

    assert wa.verify_signature(secret, body, given) is False


def handshake_params() -> dict[str, str]:
    sample = http_sample("whatsapp_webhook_verification_request")
    return dict(parse_qsl(urlsplit(sample.target).query))


def test_the_handshake_sample_echoes_its_challenge() -> None:
    assert wa.check_handshake(handshake_params(), "my-verify-token") == "1158201444"


def test_a_wrong_token_or_mode_gets_no_challenge() -> None:
    params = handshake_params()

    assert wa.check_handshake(params, "another-token") is None
    assert wa.check_handshake({**params, "hub.mode": "unsubscribe"}, "my-verify-token") is None


@pytest.mark.parametrize(
    ("drop", "challenge", "code"),
    [
        ("hub.challenge", None, "missing_field"),
        ("hub.verify_token", None, "missing_field"),
        (None, "<script>", "invalid_field"),
    ],
)
def test_a_malformed_handshake_is_refused(
    drop: str | None, challenge: str | None, code: str
) -> None:
    params = handshake_params()
    if drop:
        del params[drop]
    if challenge:
        params["hub.challenge"] = challenge

    with pytest.raises(InvalidCallback) as caught:
        wa.check_handshake(params, "my-verify-token")

    assert caught.value.code == code


def test_the_sample_statuses_parse() -> None:
    statuses = wa.parse_statuses(http_sample("whatsapp_status_webhook_request").body)

    assert statuses == [
        wa.WhatsAppStatus(
            message_id="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA",
            status="delivered",
            timestamp=datetime(2025, 6, 18, 16, 22, 53, tzinfo=UTC),
            recipient_id="16505076520",
            phone_number_id="106540352242922",
        ),
        wa.WhatsAppStatus(
            message_id="wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTgA",
            status="failed",
            timestamp=datetime(2025, 6, 18, 16, 23, tzinfo=UTC),
            recipient_id="16505076521",
            error_code=131049,
            error_title="This message was not delivered to maintain healthy ecosystem engagement.",
            phone_number_id="106540352242922",
        ),
    ]


def test_inbound_messages_are_not_statuses() -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {"messages": [{}]}}]}],
    }

    assert wa.parse_statuses(json.dumps(body).encode()) == []


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (b"", "empty_body", "empty"),
        (b"{not json", "malformed_json", "JSON"),
        (b'{"object": "page", "entry": []}', "unexpected_object", "whatsapp_business_account"),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": '
            b'[{"value": {"statuses": [{"status": "read"}]}}]}]}',
            "missing_field",
            "entry[0].changes[0].value.statuses[0].id",
        ),
        (
            b'{"object": "whatsapp_business_account", "entry": {"a": 1}}',
            "invalid_field",
            "entry",
        ),
    ],
)
def test_a_malformed_body_names_its_problem(body: bytes, code: str, named: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        wa.parse_statuses(body)

    assert caught.value.code == code
    assert named in caught.value.detail
