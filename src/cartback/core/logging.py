"""Structured logs: one JSON object per line, a dotted event name and fields.

Never log a secret or a whole address: use :func:`mask_email` / :func:`mask_phone`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("cartback")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def mask_email(address: str | None) -> str | None:
    """``jane.doe@example.com`` -> ``j***@example.com``."""
    if not address or "@" not in address:
        return None if address is None else "***"
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str | None) -> str | None:
    if not number:
        return None
    return f"***{number[-2:]}"


def mask_address(address: str | None) -> str | None:
    """An email address, phone number or chat id, masked for a log line."""
    if address and "@" in address:
        return mask_email(address)
    return mask_phone(address)
