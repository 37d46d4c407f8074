"""An email channel that keeps messages instead of sending them.

Used when no SMTP server is configured, by the demo, and by tests. It is real code: it builds the
same MIME bytes the SMTP channel would send. With a directory it also writes ``<message_id>.eml``
files there and reads them back on start, so the outbox survives a restart.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cartback.channels.base import OutgoingEmail, PermanentSendError, SendResult
from cartback.channels.mime import build_mime
from cartback.core.clock import Clock, SystemClock

__all__ = ["CapturedEmail", "OutboxChannel"]

_SAFE_FILE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class CapturedEmail:
    message_id: str
    to_address: str
    subject: str
    mime: bytes
    captured_at: datetime


class OutboxChannel:
    """Captures emails in memory (the newest ``maxlen``) and optionally as files. Thread-safe."""

    name = "outbox"

    def __init__(
        self, directory: Path | None = None, *, maxlen: int = 2000, clock: Clock | None = None
    ) -> None:
        self._directory = directory
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._emails: deque[CapturedEmail] = deque(maxlen=maxlen)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            loaded = sorted(_load(directory), key=lambda captured: captured.captured_at)
            self._emails.extend(loaded)

    def send(self, email: OutgoingEmail) -> SendResult:
        if self._directory is not None and not _SAFE_FILE_ID.fullmatch(email.message_id):
            raise PermanentSendError("message.invalid", "message_id is not a safe file name")
        now = self._clock.now()
        try:
            mime = build_mime(email, date=now)
        except ValueError as exc:
            raise PermanentSendError("message.invalid", str(exc)) from exc
        captured = CapturedEmail(email.message_id, email.to_address, email.subject, mime, now)
        if self._directory is not None:
            _write_atomically(self._directory / f"{email.message_id}.eml", mime)
        with self._lock:
            self._emails.append(captured)
        domain = email.from_address.rpartition("@")[2]
        return SendResult(provider="outbox", provider_message_id=f"<{email.message_id}@{domain}>")

    def list(self) -> list[CapturedEmail]:
        """Captured emails, newest first."""
        with self._lock:
            return list(reversed(self._emails))

    def get(self, message_id: str) -> CapturedEmail | None:
        with self._lock:
            for captured in reversed(self._emails):
                if captured.message_id == message_id:
                    return captured
        return None

    def close(self) -> None:
        """Nothing to release: files are written whole on each send."""


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader (or a restart) never sees half a message: write aside, then rename.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(directory: Path) -> list[CapturedEmail]:
    loaded = []
    for path in directory.glob("*.eml"):
        if not _SAFE_FILE_ID.fullmatch(path.stem):
            continue  # e.g. a temp file left by a crash
        mime = path.read_bytes()
        message = email.message_from_bytes(mime, policy=email.policy.default)
        try:
            captured_at = message["Date"].datetime.astimezone(UTC)
        except (AttributeError, TypeError, ValueError):
            captured_at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        to = message["To"]
        to_address = to.addresses[0].addr_spec if to is not None and to.addresses else ""
        subject = str(message["Subject"] or "")
        loaded.append(CapturedEmail(path.stem, to_address, subject, mime, captured_at))
    return loaded
