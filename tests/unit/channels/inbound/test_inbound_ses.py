"""Amazon SES through SNS: the signature (versions 1 and 2) over the sample envelope signed
with a test key, where certificates may come from, and the SES records as events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cartback.channels.inbound import EmailEvent, EmailEventKind, InvalidCallback, ses
from support.callback_samples import (
    SNS_CERT_URL,
    json_sample,
    sign_sns,
    sns_certificate_pem,
    subscription_confirmation,
)

TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"


class Fetcher:
    def __init__(self, pem: bytes | None = None) -> None:
        self.pem = pem if pem is not None else sns_certificate_pem()
        self.asked: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.asked.append(url)
        return self.pem


def envelope(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = json_sample("ses_sns_notification_envelope")
    found.update(changes)
    return found


def parsed(data: dict[str, Any]) -> ses.SnsMessage:
    return ses.parse_envelope(json.dumps(data).encode())


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_sample_verifies(version: str) -> None:
    fetch = Fetcher()

    assert ses.verify(parsed(sign_sns(envelope(), version=version)), fetch)
    assert fetch.asked == [SNS_CERT_URL]


def test_a_subject_is_part_of_what_is_signed() -> None:
    signed = sign_sns(envelope(Subject="Amazon SES Email Event Notification"))

    assert ses.verify(parsed(signed), Fetcher())
    assert not ses.verify(parsed({**signed, "Subject": "Another"}), Fetcher())


def test_a_subscription_confirmation_verifies() -> None:
    assert ses.verify(parsed(subscription_confirmation(TOPIC)), Fetcher())


def test_the_unsigned_sample_does_not_verify() -> None:
    # its Signature is a placeholder (see the sample's .source.txt)
    assert ses.verify(parsed(envelope()), Fetcher()) is False


@pytest.mark.parametrize(
    "change",
    [
        {"Message": "{}"},
        {"TopicArn": "arn:aws:sns:us-west-2:999999999999:Evil"},
        {"Timestamp": "2012-05-02T00:54:07.655Z"},
        {
            "Type": "SubscriptionConfirmation",
            "SubscribeURL": "https://sns.us-west-2.amazonaws.com/",
        },
        {"SignatureVersion": "3"},
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, Any]) -> None:
    signed = {**sign_sns(envelope()), "Token": "t", **change}
    if signed["Type"] == "Notification":
        del signed["Token"]

    assert ses.verify(parsed(signed), Fetcher()) is False


def test_another_key_does_not_verify() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")])
    other = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2099, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )

    assert ses.verify(parsed(sign_sns(envelope())), Fetcher(other)) is False
    assert ses.verify(parsed(sign_sns(envelope())), Fetcher(b"not a certificate")) is False


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/cert.pem",
        "https://sns.us-west-2.amazonaws.com.evil.test/cert.pem",
        "https://evil.test/sns.us-west-2.amazonaws.com/cert.pem",
        "https://sns.us-west-2.amazonaws.com@evil.test/cert.pem",
        "https://user@sns.us-west-2.amazonaws.com/cert.pem",
        "https://sns.us-west-2.amazonaws.com:8443/cert.pem",
        "https://sqs.us-west-2.amazonaws.com/cert.pem",
        "https://sns.amazonaws.com/cert.pem",
        "https://[::1]/cert.pem",
    ],
)
def test_certificates_come_only_from_sns_over_https(url: str) -> None:
    fetch = Fetcher()
    signed = {**sign_sns(envelope()), "SigningCertURL": url}

    assert ses.is_sns_url(url) is False
    assert ses.verify(parsed(signed), fetch) is False
    assert fetch.asked == []  # never fetched


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-central-1.amazonaws.com/x.pem",
        "https://sns.us-gov-west-1.amazonaws.com/x.pem",
        "https://sns.ap-southeast-2.amazonaws.com:443/x.pem",
    ],
)
def test_sns_hosts_of_every_region_are_accepted(url: str) -> None:
    assert ses.is_sns_url(url)


def test_a_subscribe_url_off_sns_is_refused() -> None:
    confirmation = subscription_confirmation(TOPIC)
    confirmation["SubscribeURL"] = "https://evil.test/?Action=ConfirmSubscription"
    signed = sign_sns(confirmation)

    assert ses.verify(parsed(signed), Fetcher()) is False


def test_a_fetch_that_fails_is_unavailable_not_forged() -> None:
    def broken(url: str) -> bytes:
        raise OSError("network down")

    with pytest.raises(ses.CertificateUnavailable):
        ses.verify(parsed(sign_sns(envelope())), broken)


def test_the_cache_fetches_each_certificate_once() -> None:
    fetch = Fetcher()
    cache = ses.CertificateCache(fetch, size=1)

    assert cache("https://a") == cache("https://a")
    cache("https://b")
    cache("https://a")

    assert fetch.asked == ["https://a", "https://b", "https://a"]


def test_the_envelope_sample_parses() -> None:
    message = parsed(envelope())

    assert (message.type, message.topic_arn, message.signature_version) == (
        "Notification",
        TOPIC,
        "1",
    )
    assert message.subscribe_url is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"Type": "Gossip"}, "invalid_field"),
        ({"MessageId": None}, "missing_field"),
        ({"Type": "SubscriptionConfirmation"}, "missing_field"),  # no SubscribeURL
    ],
)
def test_a_malformed_envelope_is_refused(data: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        parsed({k: v for k, v in envelope(**data).items() if v is not None})

    assert caught.value.code == code


def test_the_envelopes_bounce_is_a_hard_bounce() -> None:
    [event] = ses.parse_events(envelope()["Message"])

    assert event == EmailEvent(
        provider="ses",
        kind=EmailEventKind.HARD_BOUNCE,
        address="recipient@example.com",
        provider_message_id="EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        occurred_at=datetime(2017, 8, 5, 0, 41, 2, 669000, tzinfo=UTC),
        detail="Permanent/General: smtp; 550 5.1.1 user unknown",
    )


@pytest.mark.parametrize(
    ("name", "kind", "occurred_at"),
    [
        ("Bounce", EmailEventKind.HARD_BOUNCE, datetime(2017, 8, 5, 0, 41, 2, 669000, tzinfo=UTC)),
        ("Complaint", EmailEventKind.COMPLAINT, datetime(2017, 8, 5, 0, 41, 2, 669000, tzinfo=UTC)),
        (
            "Delivery",
            EmailEventKind.DELIVERED,
            datetime(2016, 10, 19, 23, 21, 4, 133000, tzinfo=UTC),
        ),
        ("Open", EmailEventKind.OPENED, datetime(2017, 8, 9, 22, 0, 19, 652000, tzinfo=UTC)),
        ("Click", EmailEventKind.CLICKED, datetime(2017, 8, 9, 23, 51, 25, 570000, tzinfo=UTC)),
    ],
)
def test_each_sample_record(name: str, kind: EmailEventKind, occurred_at: datetime) -> None:
    record = json_sample("ses_event_records")[name]

    [event] = ses.parse_events(json.dumps(record))

    assert (event.kind, event.address, event.occurred_at) == (
        kind,
        "recipient@example.com",
        occurred_at,
    )


def test_a_transient_bounce_is_soft_and_a_not_spam_report_no_complaint() -> None:
    records = json_sample("ses_event_records")
    bounce = records["Bounce"]
    bounce["bounce"]["bounceType"] = "Transient"
    complaint = records["Complaint"]
    complaint["complaint"]["complaintFeedbackType"] = "not-spam"

    assert ses.parse_events(json.dumps(bounce))[0].kind == EmailEventKind.SOFT_BOUNCE
    assert ses.parse_events(json.dumps(complaint))[0].kind == EmailEventKind.OTHER


def test_identity_feedback_uses_notification_type_and_carries_the_message_id_header() -> None:
    record = json_sample("ses_event_records")["Complaint"]
    record["notificationType"] = record.pop("eventType")
    record["mail"]["headers"].append({"name": "Message-ID", "value": "<m1@acme.test>"})

    [event] = ses.parse_events(json.dumps(record))

    assert (event.kind, event.message_id_header) == (EmailEventKind.COMPLAINT, "<m1@acme.test>")


def test_a_message_that_is_no_ses_event_gives_nothing() -> None:
    notice = {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "ok"}

    assert ses.parse_events(json.dumps(notice)) == []


def test_a_message_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidCallback) as caught:
        ses.parse_events("Hello from SNS")

    assert caught.value.code == "malformed_json"
