"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def new_id() -> str:
    """A random, URL-safe primary key (UUID4 hex, 32 characters)."""
    return uuid.uuid4().hex


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A secret token with a readable prefix, e.g. ``cb_sk_...``."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret. API keys are random, so no salt or KDF is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
