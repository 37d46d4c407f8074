"""Email bounces and complaints from SES (SNS), SendGrid, Mailgun and Postmark end to end:
verified events suppress once, replays change nothing, forgeries change nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.callbacks._email_api import certificate_fetcher, subscription_confirmer
from cartback.core.clock import ManualClock
from support.callback_samples import (
    SAMPLES,
    json_sample,
    mailgun_body,
    mailgun_time,
    sendgrid_headers,
    ses_envelope,
    sns_certificate_pem,
    subscription_confirmation,
)
from support.callback_world import (
    SES_ID,
    TOPIC,
    Seeded,
    message,
    problem,
    seed,
    state,
    suppressions,
)
from support.factories import StoreKeys

# --- email: Amazon SES ---------------------------------------------------------------------


class Sns:
    """Stands in for SNS's certificate host and the SubscribeURL GET."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.confirmed: list[str] = []
        self.fail = False

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if self.fail:
            raise OSError("unreachable")
        return sns_certificate_pem()

    def confirm(self, url: str) -> None:
        self.confirmed.append(url)


@pytest.fixture
def sns(client: TestClient) -> Iterator[Sns]:
    stand_in = Sns()
    overrides: dict[Callable[..., Any], Callable[..., Any]] = client.app.dependency_overrides  # type: ignore[attr-defined]
    overrides[certificate_fetcher] = lambda: stand_in.fetch
    overrides[subscription_confirmer] = lambda: stand_in.confirm
    yield stand_in
    overrides.clear()


def email_message(
    runtime: Runtime, clock: ManualClock, store: StoreKeys, provider_message_id: str,
    provider: str = "ses", to: str = "recipient@example.com",
) -> Seeded:  # fmt: skip
    return seed(
        runtime, clock, store, channel="email", provider=provider,
        provider_message_id=provider_message_id, to_address=to, email=to,
    )  # fmt: skip


def post_ses(client: TestClient, store: StoreKeys, envelope: dict[str, Any]) -> Any:
    return client.post(
        f"/v1/callbacks/email/ses/{store.id}",
        content=json.dumps(envelope).encode(),
        headers={"Content-Type": "text/plain", "x-amz-sns-message-type": envelope["Type"]},
    )


def test_an_ses_hard_bounce_suppresses_bounces_and_ends_the_journey_once(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, sns: Sns
) -> None:
    seeded = email_message(runtime, clock, shop, SES_ID)
    envelope = ses_envelope(json_sample("ses_event_records")["Bounce"], TOPIC)

    response = post_ses(client, shop, envelope)

    assert response.status_code == 200, response.text
    assert response.json() == {"events": 1, "changed": 1}
    assert suppressions(runtime) == {("email", "recipient@example.com", "hard_bounce")}
    bounced = message(runtime, seeded.message_id)
    assert (bounced.status, bounced.error_code, bounced.error_reason) == (
        "bounced",
        "ses.hard_bounce",
        "Permanent/General: smtp; 550 5.1.1 user unknown",
    )
    after = state(runtime)
    assert after["enrollments"] == [(seeded.enrollment_id, "exited", "hard_bounce")]
    assert post_ses(client, shop, envelope).json() == {"events": 1, "changed": 0}
    assert state(runtime) == after
    assert sns.fetched[0].startswith("https://sns.us-west-2.amazonaws.com/")


def test_an_ses_complaint_found_by_message_id_header(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, sns: Sns
) -> None:
    seeded = email_message(runtime, clock, shop, "<m-1@acme.test>", provider="smtp")
    record = json_sample("ses_event_records")["Complaint"]
    record["mail"]["headers"].append({"name": "Message-ID", "value": "<m-1@acme.test>"})

    assert post_ses(client, shop, ses_envelope(record, TOPIC)).status_code == 200

    assert message(runtime, seeded.message_id).status == "complained"
    assert suppressions(runtime) == {("email", "recipient@example.com", "complaint")}
    assert state(runtime)["enrollments"] == [(seeded.enrollment_id, "exited", "complaint")]


def test_an_ses_delivery_marks_delivered_and_suppresses_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, sns: Sns
) -> None:
    seeded = email_message(runtime, clock, shop, SES_ID)

    post_ses(client, shop, ses_envelope(json_sample("ses_event_records")["Delivery"], TOPIC))

    assert message(runtime, seeded.message_id).status == "delivered"
    assert suppressions(runtime) == set()


def test_a_bounce_for_an_address_we_never_mailed_still_suppresses_it(
    client: TestClient, runtime: Runtime, shop: StoreKeys, sns: Sns
) -> None:
    post_ses(client, shop, ses_envelope(json_sample("ses_event_records")["Bounce"], TOPIC))

    assert state(runtime)["suppressions"] == [
        (shop.id, "email", "recipient@example.com", "hard_bounce")
    ]


@pytest.mark.parametrize("forgery", ["unsigned", "tampered", "other topic"])
def test_a_forged_ses_notification_is_403_and_changes_nothing(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys, sns: Sns,
    forgery: str,
) -> None:  # fmt: skip
    email_message(runtime, clock, shop, SES_ID)
    record = json_sample("ses_event_records")["Bounce"]
    envelope = {
        "unsigned": json_sample("ses_sns_notification_envelope"),
        "tampered": {**ses_envelope(record, TOPIC), "MessageId": "another"},
        "other topic": ses_envelope(record, TOPIC.replace("MyTopic", "Theirs")),
    }[forgery]
    before = state(runtime)

    response = post_ses(client, shop, envelope)

    code = "unknown_topic" if forgery == "other topic" else "invalid_signature"
    problem(response, 403, code)
    assert state(runtime) == before


def test_a_subscription_to_a_listed_topic_is_confirmed(
    client: TestClient, shop: StoreKeys, sns: Sns
) -> None:
    confirmation = subscription_confirmation(TOPIC)

    response = post_ses(client, shop, confirmation)

    assert response.status_code == 200, response.text
    assert response.json() == {"confirmed": True, "topic_arn": TOPIC}
    assert sns.confirmed == [confirmation["SubscribeURL"]]


def test_a_subscription_to_another_topic_is_refused(
    client: TestClient, shop: StoreKeys, bare: StoreKeys, sns: Sns
) -> None:
    other = subscription_confirmation("arn:aws:sns:us-west-2:999999999999:Theirs")

    problem(post_ses(client, shop, other), 403, "unknown_topic")
    problem(post_ses(client, bare, subscription_confirmation(TOPIC)), 404, "channel_not_configured")
    assert sns.confirmed == []


def test_an_unreachable_certificate_is_503_and_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys, sns: Sns
) -> None:
    sns.fail = True
    before = state(runtime)

    response = post_ses(
        client, shop, ses_envelope(json_sample("ses_event_records")["Bounce"], TOPIC)
    )

    problem(response, 503, "certificate_unavailable")
    assert state(runtime) == before


def test_a_malformed_sns_body_is_a_4xx(client: TestClient, shop: StoreKeys, sns: Sns) -> None:
    url = f"/v1/callbacks/email/ses/{shop.id}"

    problem(client.post(url, content=b"<xml/>"), 400, "malformed_json")
    problem(client.post(url, json={"Type": "Notification"}), 422, "missing_field")
    mismatch = client.post(
        url,
        content=json.dumps(ses_envelope({}, TOPIC)).encode(),
        headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
    )
    problem(mismatch, 400, "type_mismatch")


# --- email: SendGrid, Mailgun, Postmark ----------------------------------------------------


def test_a_signed_sendgrid_batch_suppresses_and_bounces(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    seeded = email_message(
        runtime, clock, shop, "<14c5d75ce93.dfd.64b469@ismtpd-555>", provider="smtp",
        to="example@test.com",
    )  # fmt: skip
    body = (SAMPLES / "sendgrid_event_webhook_batch.json").read_bytes()
    url = f"/v1/callbacks/email/sendgrid/{shop.id}"

    response = client.post(url, content=body, headers=sendgrid_headers(body))

    assert response.status_code == 200, response.text
    assert response.json()["events"] == 11
    assert suppressions(runtime) == {("email", "example@test.com", "hard_bounce")}
    assert message(runtime, seeded.message_id).status == "bounced"
    after = state(runtime)
    assert after["enrollments"] == [(seeded.enrollment_id, "exited", "hard_bounce")]
    replay = client.post(url, content=body, headers=sendgrid_headers(body))
    assert replay.json() == {"events": 11, "changed": 0}
    assert state(runtime) == after


def test_a_sendgrid_spam_report_is_a_complaint(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    events = json.loads((SAMPLES / "sendgrid_event_webhook_batch.json").read_text())
    body = json.dumps([e for e in events if e["event"] == "spamreport"]).encode()

    client.post(
        f"/v1/callbacks/email/sendgrid/{shop.id}", content=body, headers=sendgrid_headers(body)
    )

    assert suppressions(runtime) == {("email", "example@test.com", "complaint")}


def test_a_forged_sendgrid_batch_is_403_and_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    body = (SAMPLES / "sendgrid_event_webhook_batch.json").read_bytes()
    headers = sendgrid_headers(b"[]")  # a real signature, of another body
    before = state(runtime)

    response = client.post(f"/v1/callbacks/email/sendgrid/{shop.id}", content=body, headers=headers)

    problem(response, 403, "invalid_signature")
    assert state(runtime) == before


def test_a_fresh_mailgun_complaint_suppresses_and_a_stale_one_is_403(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    body = mailgun_body("complained")
    url = f"/v1/callbacks/email/mailgun/{shop.id}"
    clock.set(mailgun_time(body) + timedelta(minutes=6))
    before = state(runtime)

    problem(client.post(url, json=body), 403, "invalid_signature")
    assert state(runtime) == before

    clock.set(mailgun_time(body) + timedelta(seconds=30))
    response = client.post(url, json=body)

    assert response.json() == {"events": 1, "changed": 1}
    assert suppressions(runtime) == {("email", "alice@example.com", "complaint")}


def test_a_mailgun_body_signed_with_another_key_is_403(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    body = mailgun_body("failed_permanent", key="someone-elses-key")
    clock.set(mailgun_time(body))

    problem(
        client.post(f"/v1/callbacks/email/mailgun/{shop.id}", json=body), 403, "invalid_signature"
    )
    assert suppressions(runtime) == set()


def postmark_auth(user: str = "hook", password: str = "p4ss word") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_a_postmark_complaint_with_basic_auth_suppresses(
    client: TestClient, runtime: Runtime, clock: ManualClock, shop: StoreKeys
) -> None:
    seeded = email_message(
        runtime, clock, shop, "00000000-0000-0000-0000-000000000000", provider="postmark",
        to="john@example.com",
    )  # fmt: skip
    body = (SAMPLES / "postmark_spam_complaint_webhook.json").read_bytes()

    response = client.post(
        f"/v1/callbacks/email/postmark/{shop.id}", content=body, headers=postmark_auth()
    )

    assert response.json() == {"events": 1, "changed": 1}
    assert message(runtime, seeded.message_id).status == "complained"
    assert suppressions(runtime) == {("email", "john@example.com", "complaint")}


def test_postmark_without_or_with_wrong_credentials_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys, bare: StoreKeys
) -> None:
    body = (SAMPLES / "postmark_spam_complaint_webhook.json").read_bytes()
    url = f"/v1/callbacks/email/postmark/{shop.id}"
    before = state(runtime)

    problem(client.post(url, content=body), 401, "missing_credentials")
    problem(
        client.post(url, content=body, headers=postmark_auth(password="guess")),
        403,
        "invalid_credentials",
    )
    problem(
        client.post(
            f"/v1/callbacks/email/postmark/{bare.id}", content=body, headers=postmark_auth()
        ),
        404,
        "channel_not_configured",
    )
    assert state(runtime) == before


def test_email_routes_name_bad_input(client: TestClient, shop: StoreKeys) -> None:
    problem(
        client.post(f"/v1/callbacks/email/sparkpost/{shop.id}", json={}), 404, "unknown_provider"
    )
    problem(client.post(f"/v1/callbacks/email/ses/{'x' * 40}", json={}), 404, "store_not_found")
    url = f"/v1/callbacks/email/postmark/{shop.id}"
    problem(client.post(url, content=b"nope", headers=postmark_auth()), 400, "malformed_json")
    problem(
        client.post(url, json={"RecordType": "Bounce"}, headers=postmark_auth()),
        422,
        "missing_field",
    )
    huge = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    problem(
        client.post(f"/v1/callbacks/email/sendgrid/{shop.id}", content=huge), 413, "body_too_large"
    )


@pytest.mark.parametrize(
    ("email", "status", "code"),
    [(r"a\u0000@b.test", 400, "malformed_json"), (r"a\ud800@b.test", 400, "malformed_json")],
)
def test_text_no_database_could_store_is_a_400(
    client: TestClient, runtime: Runtime, shop: StoreKeys, email: str, status: int, code: str
) -> None:
    body = b'{"RecordType": "SpamComplaint", "Email": "%s"}' % email.encode()
    url = f"/v1/callbacks/email/postmark/{shop.id}"

    problem(client.post(url, content=body, headers=postmark_auth()), status, code)
    assert suppressions(runtime) == set()


def test_an_address_we_could_never_have_mailed_changes_nothing(
    client: TestClient, runtime: Runtime, shop: StoreKeys
) -> None:
    url = f"/v1/callbacks/email/postmark/{shop.id}"
    for address in ["x" * 300 + "@b.test", "not-an-address"]:
        body = {"RecordType": "SpamComplaint", "Email": address}

        response = client.post(url, json=body, headers=postmark_auth())

        assert response.json() == {"events": 1, "changed": 0}
    assert suppressions(runtime) == set()
