"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid

_last_ns = 0
_ns_lock = threading.Lock()


def new_id() -> str:
    """A random, URL-safe primary key (UUID4 hex, 32 characters)."""
    return uuid.uuid4().hex


def new_sortable_id() -> str:
    """A 32-character id that sorts by creation time: 16 hex digits of nanoseconds since
    the epoch (strictly increasing within a process), then 16 random ones.

    For append-only ledgers whose newest row wins: two rows with the same ``occurred_at``
    are told apart by the order they were written.
    """
    global _last_ns
    with _ns_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        stamp = _last_ns
    return f"{stamp:016x}{secrets.token_hex(8)}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A secret token with a readable prefix, e.g. ``cb_sk_...``."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret. API keys are random, so no salt or KDF is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()
