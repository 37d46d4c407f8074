"""Steps every callback route takes: load the store, read a capped body, refuse forgeries,
name what is wrong with a payload, write in the group-commit writer."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from cartback.channels.inbound import InvalidCallback
from cartback.core.services import Services
from cartback.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, Unprocessable
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import store_settings

log = logging.getLogger("cartback.callbacks")
T = TypeVar("T")

MAX_BODY_BYTES = 256 * 1024  # a Twilio form, a WhatsApp batch, one Telegram update or event
MAX_BATCH_BYTES = 4 * 1024 * 1024  # a SendGrid batch
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON / form data"},
    403: {"description": "The signature, token or credentials do not verify"},
    404: {"description": "No such store, or the channel is not set up"},
    413: {"description": "The body is too large"},
    422: {"description": "A field is missing or invalid"},
}
_BAD_SYNTAX = frozenset({"empty_body", "malformed_json", "malformed_form"})
_STORE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class CallbackStore:
    id: str
    name: str
    settings: StoreSettings


def load_store(svc: Services, store_id: str) -> CallbackStore:
    with svc.readers() as session:
        store = session.get(Store, store_id) if _STORE_ID.fullmatch(store_id) else None
        if store is None:
            raise NotFound(f"No store with id {store_id!r}", code="store_not_found")
        return CallbackStore(store.id, store.name, store_settings(store))


def not_set_up(what: str, setting: str) -> NotFound:
    return NotFound(
        f"This store takes no {what} callbacks: set {setting} in its settings",
        code="channel_not_configured",
    )


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    too_large = PayloadTooLarge(
        f"The body is over the limit of {limit} bytes", code="body_too_large"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parsed(parse: Callable[..., T], *args: Any) -> T:
    """The payload, or the 400/422 problem naming what is wrong with it."""
    try:
        return parse(*args)
    except InvalidCallback as exc:
        problem = BadRequest if exc.code in _BAD_SYNTAX else Unprocessable
        raise problem(exc.detail, code=exc.code) from None


def forged(
    provider: str, store: CallbackStore, detail: str, code: str = "invalid_signature"
) -> Forbidden:
    log.warning(
        "callback.refused", extra={"provider": provider, "store_id": store.id, "code": code}
    )
    return Forbidden(detail, code=code)


async def write(svc: Services, work: Callable[[Session], T]) -> T:
    return await asyncio.wrap_future(svc.writer.submit(work))
