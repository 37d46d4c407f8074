from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cartback.channels import FcmSender, OutgoingPush
from cartback.channels.fcm import assertion_claims, fcm_message
from support.push_services import VAPID_PEM, service_account

# The sample's apns-expiration (1735776000) is a day after this.
NOW = datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
TOKEN_URL = "https://oauth2.googleapis.com/token"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_the_sample_values_give_the_sample_body(samples_dir: Path) -> None:
    sample = json.loads((samples_dir / "fcm_v1_send_request.json").read_text())
    message = sample["message"]
    push = OutgoingPush(
        message_id="msg-1",
        title=message["notification"]["title"],
        body=message["notification"]["body"],
        url=message["webpush"]["fcm_options"]["link"],
        icon_url=message["notification"]["image"],
    )

    body = fcm_message(message["token"], push, NOW)

    message["data"] = {
        "message_id": "msg-1",
        "recover_url": message["data"]["recover_url"],
        "type": message["data"]["type"],
    }
    assert body == sample
    assert json.dumps(body) == json.dumps(sample)  # same keys in the same order


def test_ttl_zero_means_now_or_never_on_every_platform() -> None:
    push = OutgoingPush("m1", "Title", "Body", "https://s.example/r/1", ttl_seconds=0)

    message = fcm_message("tok", push, NOW)["message"]

    assert message["notification"] == {"title": "Title", "body": "Body"}  # no image
    assert message["android"]["ttl"] == "0s"
    assert message["apns"]["headers"]["apns-expiration"] == "0"
    assert message["webpush"]["headers"]["TTL"] == "0"


def test_the_assertion_claims_live_one_hour() -> None:
    assert assertion_claims("svc@p.iam.gserviceaccount.com", TOKEN_URL, NOW) == {
        "iss": "svc@p.iam.gserviceaccount.com",
        "sub": "svc@p.iam.gserviceaccount.com",
        "aud": TOKEN_URL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": 1735689600,
        "exp": 1735693200,
    }


def test_the_token_url_defaults_to_the_keys_token_uri_and_can_be_overridden(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    account: dict[str, Any] = service_account(rsa_key)
    del account["token_uri"]

    sender = FcmSender("p", account, token_url="http://127.0.0.1:1/token")
    sender.close()

    with pytest.raises(ValueError, match="token_uri"):
        FcmSender("p", account)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_email": ""}, "client_email"),
        ({"private_key": None}, "private_key"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "PEM"),
        ({"private_key": VAPID_PEM}, "RSA"),
    ],
)
def test_a_broken_service_account_is_refused_without_quoting_the_key(
    rsa_key: rsa.RSAPrivateKey, changes: dict[str, Any], message: str
) -> None:
    account: dict[str, Any] = {**service_account(rsa_key), **changes}

    with pytest.raises(ValueError, match=message) as raised:
        FcmSender("p", account)

    shown = "".join(traceback.format_exception(raised.value))  # chained errors included
    assert "AAAA" not in shown
    assert not [line for line in VAPID_PEM.splitlines()[1:-1] if line in shown]


@pytest.mark.parametrize("project_id", ["", "a/b"])
def test_a_bad_project_id_is_refused(rsa_key: rsa.RSAPrivateKey, project_id: str) -> None:
    with pytest.raises(ValueError, match="project_id"):
        FcmSender(project_id, service_account(rsa_key))


def test_the_repr_hides_the_key(rsa_key: rsa.RSAPrivateKey) -> None:
    account = service_account(rsa_key)
    sender = FcmSender("p", account)
    sender.close()

    assert not [line for line in account["private_key"].splitlines()[1:-1] if line in repr(sender)]
