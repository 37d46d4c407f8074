"""Signed, unguessable tokens for links in messages (``/r/<token>``, ``/u/<token>``).

A token is ``<id>.<signature>`` where the signature is a truncated HMAC-SHA256 over
the purpose and the id. A changed character anywhere gives ``None``, never an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class Signer:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 characters long")
        self._key = secret.encode()

    def _signature(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")

    def sign(self, purpose: str, value: str) -> str:
        if "." in value:
            raise ValueError("a signed value cannot contain '.'")
        return f"{value}.{self._signature(purpose, value)}"

    def unsign(self, purpose: str, token: str) -> str | None:
        value, _, signature = token.partition(".")
        if not value or not signature:
            return None
        expected = self._signature(purpose, value)
        return value if hmac.compare_digest(expected, signature) else None
