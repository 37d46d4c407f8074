"""Steps every platform route takes: load the store, read a capped body, refuse a request
that does not prove itself, and apply the mapped delivery in the group-commit writer."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from cartback.core.services import Services
from cartback.errors import NotFound, PayloadTooLarge, Unauthorized
from cartback.ingest.platforms import service
from cartback.ingest.platforms._common import Mapped
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import store_settings

log = logging.getLogger("cartback.ingest")

# A Shopify order with hundreds of lines and its price sets runs to a few hundred KiB.
MAX_BODY_BYTES = 2 * 1024 * 1024
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON, or the platform's headers are missing"},
    401: {"description": "The signature (or bearer token) does not verify; nothing is stored"},
    404: {"description": "No such store, or this platform is not connected to it"},
    413: {"description": "The body is too large"},
    422: {"description": "A field of the payload is missing or invalid (named in the problem)"},
}
_STORE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class PlatformStore:
    id: str
    settings: StoreSettings


def load_store(svc: Services, store_id: str) -> PlatformStore:
    with svc.readers() as session:
        store = session.get(Store, store_id) if _STORE_ID.fullmatch(store_id) else None
        if store is None:
            raise NotFound(f"No store with id {store_id!r}", code="store_not_found")
        return PlatformStore(store.id, store_settings(store))


def not_connected(name: str, key: str) -> NotFound:
    return NotFound(
        f"{name} is not connected to this store: run `cartback connect {key} STORE`, or set "
        f"platforms.{key} in its settings",
        code="platform_not_configured",
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


def refused(platform: str, store: PlatformStore, header: str, given: bool) -> Unauthorized:
    """401, nothing stored. Logged without the header's value."""
    code = "invalid_signature" if given else "missing_signature"
    log.warning(
        "platform.refused", extra={"platform": platform, "store_id": store.id, "code": code}
    )
    detail = f"{header} does not sign this body" if given else f"The {header} header is missing"
    return Unauthorized(detail, code=code)


async def apply(
    svc: Services, store: PlatformStore, mapped: Mapped, topic: str | None
) -> dict[str, Any]:
    """Apply the delivery in one write transaction; the answer comes after the commit."""
    now = svc.clock.now()
    outcome = await asyncio.wrap_future(
        svc.writer.submit(
            lambda session: service.apply(
                session, store_id=store.id, settings=store.settings, mapped=mapped, now=now
            )
        )
    )
    log.info(
        "platform.webhook",
        extra={
            "platform": mapped.platform,
            "store_id": store.id,
            "topic": topic,
            "status": outcome.status,
        },
    )
    answer: dict[str, Any] = {"status": outcome.status}
    if outcome.detail:
        answer["detail"] = outcome.detail
    return answer
