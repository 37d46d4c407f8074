"""SendGrid (ECDSA), Mailgun (HMAC + freshness) and Postmark (basic auth) over their real
sample payloads, signed here with test keys."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from cartback.channels.inbound import (
    EmailEvent,
    EmailEventKind,
    InvalidCallback,
    mailgun,
    postmark,
    sendgrid,
)
from support.callback_samples import (
    MAILGUN_KEY,
    SAMPLES,
    mailgun_body,
    mailgun_time,
    sendgrid_headers,
    sendgrid_public_key,
)

# --- SendGrid ------------------------------------------------------------------------------


def sendgrid_batch() -> bytes:
    return (SAMPLES / "sendgrid_event_webhook_batch.json").read_bytes()


def test_a_signed_sendgrid_batch_verifies() -> None:
    body = sendgrid_batch()
    headers = sendgrid_headers(body)

    assert sendgrid.verify(
        sendgrid_public_key(),
        body,
        headers[sendgrid.SIGNATURE_HEADER],
        headers[sendgrid.TIMESTAMP_HEADER],
    )


def test_a_pem_key_works_too() -> None:
    der = base64.b64decode(sendgrid_public_key())
    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + base64.encodebytes(der).decode()
        + "-----END PUBLIC KEY-----\n"
    )
    body = sendgrid_batch()
    headers = sendgrid_headers(body)

    assert sendgrid.verify(
        pem, body, headers[sendgrid.SIGNATURE_HEADER], headers[sendgrid.TIMESTAMP_HEADER]
    )


@pytest.mark.parametrize(
    ("body_change", "timestamp", "signature", "key"),
    [
        (b" ", None, None, None),
        (None, "1735689601", None, None),
        (None, None, "", None),
        (None, None, "bm90IGEgc2lnbmF0dXJl", None),
        (None, None, "%%%", None),
        (None, None, None, "not a key"),
        (None, None, None, base64.b64encode(b"\x30\x03\x02\x01\x01").decode()),
    ],
)
def test_a_changed_sendgrid_request_does_not_verify(
    body_change: bytes | None, timestamp: str | None, signature: str | None, key: str | None
) -> None:
    body = sendgrid_batch()
    headers = sendgrid_headers(body)

    ok = sendgrid.verify(
        key or sendgrid_public_key(),
        body + (body_change or b""),
        headers[sendgrid.SIGNATURE_HEADER] if signature is None else signature,
        timestamp or headers[sendgrid.TIMESTAMP_HEADER],
    )

    assert ok is False


def test_the_sendgrid_batch_normalizes() -> None:
    events = sendgrid.parse_events(sendgrid_batch())

    assert [e.kind for e in events] == [
        EmailEventKind.OTHER,  # processed
        EmailEventKind.DEFERRED,
        EmailEventKind.DELIVERED,
        EmailEventKind.OPENED,
        EmailEventKind.CLICKED,
        EmailEventKind.HARD_BOUNCE,
        EmailEventKind.DROPPED,
        EmailEventKind.COMPLAINT,  # spamreport
        EmailEventKind.UNSUBSCRIBED,
        EmailEventKind.UNSUBSCRIBED,  # group_unsubscribe
        EmailEventKind.OTHER,  # group_resubscribe
    ]
    assert events[5] == EmailEvent(
        provider="sendgrid",
        kind=EmailEventKind.HARD_BOUNCE,
        address="example@test.com",
        provider_message_id="sg_message_id",
        occurred_at=datetime(2017, 12, 15, 0, 59, 29, tzinfo=UTC),
        detail="bounce: 5.0.0 500 unknown recipient",
        message_id_header="<14c5d75ce93.dfd.64b469@ismtpd-555>",
    )


def test_a_blocked_bounce_is_soft_and_the_filter_suffix_is_dropped() -> None:
    body = [
        {
            "email": "a@b.test",
            "event": "bounce",
            "type": "blocked",
            "timestamp": 1,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        }
    ]

    [event] = sendgrid.parse_events(json.dumps(body).encode())

    assert (event.kind, event.provider_message_id) == (
        EmailEventKind.SOFT_BOUNCE,
        "14c5d75ce93.dfd.64b469",
    )


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (b"{}", "invalid_field", "body"),
        (b'[{"event": "bounce"}]', "missing_field", "[0].email"),
        (b'[{"email": "a@b.test", "event": 3}]', "invalid_field", "[0].event"),
    ],
)
def test_a_malformed_sendgrid_batch_names_its_problem(body: bytes, code: str, named: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        sendgrid.parse_events(body)

    assert caught.value.code == code
    assert named in caught.value.detail


# --- Mailgun -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["delivered", "failed_permanent", "complained", "opened"])
def test_a_signed_mailgun_sample_verifies_while_fresh(name: str) -> None:
    body = mailgun_body(name)
    signature = mailgun.read_signature(body)
    sent = mailgun_time(body)

    assert mailgun.verify(MAILGUN_KEY, signature, now=sent + timedelta(seconds=299))
    assert mailgun.verify(MAILGUN_KEY, signature, now=sent - timedelta(seconds=60))
    assert not mailgun.verify(MAILGUN_KEY, signature, now=sent + timedelta(seconds=301))


def test_the_samples_own_signature_is_not_our_keys() -> None:
    from support.callback_samples import json_sample

    body = json_sample("mailgun_webhook_samples")["delivered"]

    assert not mailgun.verify(MAILGUN_KEY, mailgun.read_signature(body), now=mailgun_time(body))


@pytest.mark.parametrize(
    "change",
    [
        {"token": "70b91a64ed0f1bdf90fb9c6ea7e3c31d5792a3d0945ffc20ff"},
        {"timestamp": "1705376277"},
        {"signature": "ba96f841"},
        {"timestamp": "-1"},
    ],
)
def test_a_changed_mailgun_signature_does_not_verify(change: dict[str, str]) -> None:
    body = mailgun_body("delivered")
    now = mailgun_time(body)
    body["signature"].update(change)

    assert mailgun.verify(MAILGUN_KEY, mailgun.read_signature(body), now=now) is False


def test_a_missing_mailgun_signature_does_not_verify() -> None:
    body = mailgun_body("delivered")
    del body["signature"]["token"]

    assert mailgun.read_signature(body) is None
    assert mailgun.verify(MAILGUN_KEY, None, now=datetime(2024, 1, 16, tzinfo=UTC)) is False


def test_mailgun_events_normalize() -> None:
    kinds = {
        name: mailgun.parse_events(mailgun_body(name))[0].kind
        for name in ("delivered", "failed_permanent", "complained", "opened")
    }
    [failed] = mailgun.parse_events(mailgun_body("failed_permanent"))

    assert kinds == {
        "delivered": EmailEventKind.DELIVERED,
        "failed_permanent": EmailEventKind.HARD_BOUNCE,
        "complained": EmailEventKind.COMPLAINT,
        "opened": EmailEventKind.OPENED,
    }
    assert failed == EmailEvent(
        provider="mailgun",
        kind=EmailEventKind.HARD_BOUNCE,
        address="alice@example.com",
        provider_message_id="20130503192659.13651.20287@mail.invoicing.co",
        occurred_at=datetime.fromtimestamp(1521233195.375624, UTC),
        detail="failed: permanent suppress-bounce 605 Not delivering to previously bounced address",
        message_id_header="20130503192659.13651.20287@mail.invoicing.co",
    )


def test_a_temporary_mailgun_failure_is_soft() -> None:
    body = mailgun_body("failed_permanent")
    body["event-data"]["severity"] = "temporary"

    assert mailgun.parse_events(body)[0].kind == EmailEventKind.SOFT_BOUNCE


def test_a_mailgun_body_without_event_data_is_refused() -> None:
    with pytest.raises(InvalidCallback) as caught:
        mailgun.parse_events({"signature": {}})

    assert caught.value.code == "invalid_field"


# --- Postmark ------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_postmark_basic_auth() -> None:
    given = postmark.basic_credentials(basic("hook", "p4ss:word"))

    assert given == ("hook", "p4ss:word")
    assert postmark.credentials_match(given, "hook", "p4ss:word")
    assert not postmark.credentials_match(given, "hook", "p4ss")
    assert not postmark.credentials_match(given, "Hook", "p4ss:word")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer abc", "Basic", "Basic %%%", "Basic " + base64.b64encode(b"x").decode()],
)
def test_postmark_without_basic_credentials(header: str | None) -> None:
    assert postmark.basic_credentials(header) is None


def test_the_postmark_spam_complaint_sample() -> None:
    [event] = postmark.parse_events((SAMPLES / "postmark_spam_complaint_webhook.json").read_bytes())

    assert event == EmailEvent(
        provider="postmark",
        kind=EmailEventKind.COMPLAINT,
        address="john@example.com",
        provider_message_id="00000000-0000-0000-0000-000000000000",
        occurred_at=datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC),
        detail="Test spam complaint details",
    )


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("HardBounce", EmailEventKind.HARD_BOUNCE),
        ("BadEmailAddress", EmailEventKind.HARD_BOUNCE),
        ("SoftBounce", EmailEventKind.SOFT_BOUNCE),
        ("Transient", EmailEventKind.SOFT_BOUNCE),
        ("SpamComplaint", EmailEventKind.COMPLAINT),
        ("AutoResponder", EmailEventKind.OTHER),
    ],
)
def test_postmark_bounce_types(bounce_type: str, kind: EmailEventKind) -> None:
    record = json.loads((SAMPLES / "postmark_spam_complaint_webhook.json").read_text())
    record.update(RecordType="Bounce", Type=bounce_type)

    [event] = postmark.parse_events(json.dumps(record).encode())

    assert event.kind == kind


def test_a_postmark_suppression_change() -> None:
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ChangedAt": "2020-02-01T10:53:34.416071Z",
        "Recipient": "bounced-address@wildbit.com",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    reactivated = {**change, "SuppressSending": False}

    [event] = postmark.parse_events(json.dumps(change).encode())

    assert (event.kind, event.address) == (
        EmailEventKind.UNSUBSCRIBED,
        "bounced-address@wildbit.com",
    )
    assert postmark.parse_events(json.dumps(reactivated).encode()) == []


def test_a_postmark_record_without_its_address_is_refused() -> None:
    with pytest.raises(InvalidCallback) as caught:
        postmark.parse_events(b'{"RecordType": "Bounce", "Type": "HardBounce"}')

    assert caught.value.code == "missing_field"


@pytest.mark.parametrize(
    "when", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "yesterday", 5]
)
def test_a_time_that_cannot_be_read_is_left_out(when: object) -> None:
    record = {"RecordType": "SpamComplaint", "Email": "a@b.test", "BouncedAt": when}

    [event] = postmark.parse_events(json.dumps(record).encode())

    assert event.occurred_at is None
