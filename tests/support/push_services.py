"""Stand-ins for push services, real servers' rules in miniature (see stand_in.py).

- :class:`PushService`: an RFC 8030 push service for one browser subscription. It checks the
  VAPID ``Authorization`` (RFC 8292: ES256 signature with the ``k`` key, ``aud``, ``exp``,
  ``sub``), ``TTL``, ``Urgency`` and ``Content-Encoding``, and decrypts the body (RFC 8291,
  with http_ece) with the subscription's private key, as the browser would.
- :class:`TokenEndpoint` + :class:`FcmEndpoint`: Google's OAuth2 token endpoint for the JWT
  bearer grant (RFC 7523, the assertion verified against the service account's public key)
  and FCM's v1 ``messages:send`` that takes only the access tokens the first one issued.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import http_ece
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cartback.core.clock import ManualClock
from support.stand_in import Received, Reply

# --- web push: keys and values the tests own ----------------------------------------------

SUBJECT = "mailto:push@shop.example.com"
VAPID_KEY = ec.derive_private_key(
    0x6C2F4B8A1D3E5F7091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F701, ec.SECP256R1()
)
# The browser's subscription key pair and auth secret (PushSubscription.keys).
UA_KEY = ec.derive_private_key(
    0x2B7E151628AED2A6ABF7158809CF4F3C762E7160F38B4DA56A784D9045190CFE, ec.SECP256R1()
)
AUTH = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
SUBSCRIPTION_PATH = "/wpush/v2/gAAAAABn-SubscriptionCapabilityToken_9f8e7d6c5b4a"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


VAPID_PUBLIC = b64url(point(VAPID_KEY))
VAPID_PEM = VAPID_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()
VAPID_RAW = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))


def headers_of(request: Received) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


# --- the web push service ------------------------------------------------------------------


class PushService:
    """An RFC 8030 push service for one subscription: refuses (400, text) a request whose
    VAPID, TTL or encoding is wrong, else decrypts the body and answers ``reply``."""

    def __init__(self, clock: ManualClock, reply: Reply) -> None:
        self.clock = clock
        self.reply = reply
        self.payloads: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def __call__(self, request: Received) -> Reply:
        headers = headers_of(request)
        problem = self._vapid_problem(headers) or self._header_problem(headers)
        if problem is None and request.path != SUBSCRIPTION_PATH:
            problem = "no such subscription"
        if problem is not None:
            self.problems.append(problem)
            return Reply(400, problem.encode(), (("Content-Type", "text/plain"),))
        plaintext = http_ece.decrypt(
            request.body, private_key=UA_KEY, auth_secret=AUTH, version="aes128gcm"
        )
        self.payloads.append(json.loads(plaintext))
        return self.reply

    def _vapid_problem(self, headers: dict[str, str]) -> str | None:
        scheme, _, params = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return "Authorization is not vapid"
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if fields.get("k") != VAPID_PUBLIC:
            return "k is not the application server key"
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(fields["k"])
        )
        try:
            claims = jwt.decode(
                fields.get("t", ""),
                public,
                algorithms=["ES256"],
                audience=f"http://{headers['host']}",
                # exp is checked against the test's clock below, not the wall clock
                options={"verify_exp": False, "require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            return f"bad VAPID JWT: {exc}"
        now = self.clock.now().timestamp()
        if not now < claims["exp"] <= now + 24 * 3600:
            return "exp is not within 24 h"
        if claims["sub"] != SUBJECT:
            return "wrong sub"
        return None

    @staticmethod
    def _header_problem(headers: dict[str, str]) -> str | None:
        if not headers.get("ttl", "").isdigit():
            return "TTL missing"
        if headers.get("content-encoding") != "aes128gcm":
            return "Content-Encoding is not aes128gcm"
        if headers.get("urgency") not in ("very-low", "low", "normal", "high"):
            return "bad Urgency"
        return None


def rfc8291_decrypt(body: bytes, ua_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """RFC 8291 section 3.4 and RFC 8188 by hand (a check independent of http_ece)."""
    salt, rs, idlen = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
    as_public, ciphertext = body[21 : 21 + idlen], body[21 + idlen :]
    assert (rs, idlen, len(ciphertext) <= rs) == (4096, 65, True)
    shared = ua_key.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), as_public)
    )
    info = b"WebPush: info\x00" + point(ua_key) + as_public
    ikm = HKDF(hashes.SHA256(), 32, salt=auth, info=info).derive(shared)
    cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    plaintext, delimiter = padded.rstrip(b"\x00")[:-1], padded.rstrip(b"\x00")[-1:]
    assert delimiter == b"\x02"  # the last (only) record
    return plaintext


# --- Firebase Cloud Messaging -----------------------------------------------------------

PROJECT = "shop-push-b5ae1"
CLIENT_EMAIL = f"cartback-push@{PROJECT}.iam.gserviceaccount.com"
KEY_ID = "3f1c0b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
SEND_PATH = f"/v1/projects/{PROJECT}/messages:send"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def service_account(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """A service account key file as Google's console downloads it."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "104829461047193629481",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def json_reply(status: int, body: dict[str, Any], *headers: tuple[str, str]) -> Reply:
    return Reply(
        status, json.dumps(body).encode(), (("Content-Type", "application/json"), *headers)
    )


class TokenEndpoint:
    """Google's OAuth2 token endpoint for the JWT bearer grant (RFC 7523)."""

    def __init__(self, public_key: rsa.RSAPublicKey, clock: ManualClock, delay: float = 0.0):
        self.public_key = public_key
        self.clock = clock
        self.delay = delay
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.refuse_all = False

    def __call__(self, request: Received) -> Reply:
        form = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
        problem = self._problem(request, form)
        if problem is not None:
            return json_reply(400, {"error": "invalid_grant", "error_description": problem})
        token = f"ya29.c.test-access-token-{len(self.issued) + 1}"
        self.issued.append(token)
        body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        return Reply(200, json.dumps(body).encode(), delay=self.delay)

    def _problem(self, request: Received, form: dict[str, str]) -> str | None:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return "Invalid grant_type"
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=f"http://{headers_of(request)['host']}{request.path}",
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return "Invalid JWT Signature."
        if jwt.get_unverified_header(assertion).get("kid") != KEY_ID:
            return "Invalid key id"
        now = int(self.clock.now().timestamp())
        if (claims["iss"], claims["sub"], claims["scope"]) != (CLIENT_EMAIL, CLIENT_EMAIL, SCOPE):
            return "Invalid iss, sub or scope"
        if claims["iat"] != now or not now < claims["exp"] <= now + 3600:
            return "Invalid JWT: Token must be a short-lived token (60 minutes)"
        return None

    def valid(self, token: str) -> bool:
        return not self.refuse_all and token in self.issued and token not in self.revoked


def shape(value: Any, key: str = "") -> Any:
    """Keys all the way down, leaves as type names; ``data`` must be strings only."""
    if isinstance(value, dict):
        if key == "data":
            return "data" if all(isinstance(v, str) for v in value.values()) else "bad data"
        return {k: shape(v, k) for k, v in value.items()}
    return type(value).__name__


UNAUTHENTICATED = json_reply(
    401,
    {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 "
            "access token, login cookie or other valid authentication credential.",
            "status": "UNAUTHENTICATED",
        }
    },
)


class FcmEndpoint:
    """projects.messages.send: a bearer token from ``tokens``, a body in the sample's shape;
    answers the sample success, or ``replies[registration token]``."""

    def __init__(self, tokens: TokenEndpoint, samples_dir: Path, replies: dict[str, Reply]):
        self.tokens = tokens
        self.sample = json.loads((samples_dir / "fcm_v1_send_request.json").read_text())
        self.responses = json.loads((samples_dir / "fcm_v1_responses.json").read_text())
        self.replies = replies

    def __call__(self, request: Received) -> Reply:
        bearer = headers_of(request).get("authorization", "").removeprefix("Bearer ")
        if request.path != SEND_PATH:
            return json_reply(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
        if not self.tokens.valid(bearer):
            return UNAUTHENTICATED
        body = json.loads(request.body)
        if shape(body) != shape(self.sample):
            return self.sample_error("invalid_token")
        reply = self.replies.get(body["message"]["token"])
        if reply is not None:
            return reply
        return json_reply(200, self.responses["success"]["body"])

    def sample_error(self, name: str) -> Reply:
        sample = self.responses[name]
        return json_reply(sample["http_status"], sample["body"])


def fcm_error(status: int, google_status: str, error_code: str, *headers: tuple[str, str]) -> Reply:
    details = [{"@type": FCM_ERROR, "errorCode": error_code}]
    error = {"code": status, "message": f"{error_code} (test)", "status": google_status}
    return json_reply(status, {"error": {**error, "details": details}}, *headers)
