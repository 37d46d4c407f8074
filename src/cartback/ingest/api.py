"""``POST /v1/events``: validate, then hand the batch to the group-commit writer and
answer only after it is committed.

Kept off FastAPI's body-model injection on purpose: parsing the body ourselves is ~2x
faster on this hot path (shared/performance.md, B1) and lets us name every bad field.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cartback.core.ids import hash_secret
from cartback.core.metrics import EVENTS_INGESTED
from cartback.core.services import Services, services
from cartback.errors import BadRequest, PayloadTooLarge, ProblemError, Unprocessable
from cartback.ingest.batch import IngestUnit, ingest_group
from cartback.ingest.schemas import (
    EVENT_TYPES,
    MAX_BATCH,
    MAX_BODY_BYTES,
    EventBatch,
    EventIn,
    IngestResponse,
    batch_adapter,
)
from cartback.stores.api import bearer_key
from cartback.stores.schemas import StoreSettings
from cartback.stores.service import authenticate, store_settings

router = APIRouter(tags=["events"])


async def read_limited_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is over the limit of {limit} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"The body is over the limit of {limit} bytes", code="body_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _location(loc: tuple[Any, ...], batched: bool) -> str:
    parts: list[str] = []
    for piece in loc:
        if isinstance(piece, int):
            parts.append(f"[{piece}]")
        elif piece in EVENT_TYPES:
            continue  # the discriminator's branch name is noise to a caller
        else:
            parts.append(("." if parts else "") + str(piece))
    path = "".join(parts)
    return path if batched else path.removeprefix("[0].").removeprefix("[0]") or "body"


def parse_events(body: bytes) -> list[EventIn]:
    """Raw JSON to validated events; 400 for broken JSON, 422 naming each bad field."""
    if not body.strip():
        raise BadRequest("The body is empty; send one event or a batch as JSON", code="empty_body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None
    batched = True
    if isinstance(data, dict) and "events" in data:
        data = data["events"]
    elif isinstance(data, dict):
        data, batched = [data], False
    if not isinstance(data, list):
        raise Unprocessable(
            'Send an event object, a JSON array of events, or {"events": [...]}',
            code="invalid_shape",
        )
    if len(data) > MAX_BATCH:
        raise Unprocessable(
            f"A batch holds at most {MAX_BATCH} events; this one has {len(data)}",
            code="batch_too_large",
        )
    try:
        return batch_adapter.validate_python(data)
    except ValidationError as exc:
        errors = [_problem_error(err, batched) for err in exc.errors(include_url=False)]
        first = errors[0]
        raise Unprocessable(
            f"{len(errors)} problem(s) in the events, first: {first['field']}: {first['message']}",
            code="invalid_event",
            errors=errors,
        ) from None


def _problem_error(err: Any, batched: bool) -> dict[str, str]:
    loc = tuple(err["loc"])
    message = err["msg"]
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")
        message = f"unknown or missing event type; expected one of: {', '.join(EVENT_TYPES)}"
    return {"field": _location(loc, batched), "message": message}


# How far ahead of our clock a store's clock may run. A snapshot dated later than this
# would make every real update after it look stale.
MAX_CLOCK_SKEW = timedelta(hours=1)


def refuse_future(events: list[EventIn], now: datetime) -> None:
    limit = now + MAX_CLOCK_SKEW
    errors = [
        {
            "field": "occurred_at" if len(events) == 1 else f"[{i}].occurred_at",
            "message": f"is in the future: {event.occurred_at.isoformat()} is after "
            f"{limit.isoformat()}",
        }
        for i, event in enumerate(events)
        if event.occurred_at > limit
    ]
    if errors:
        raise Unprocessable(
            f"{errors[0]['field']} {errors[0]['message']}; check the sending clock",
            code="occurred_in_future",
            errors=errors,
        )


@dataclass(frozen=True)
class _KnownKey:
    store_id: str
    settings: StoreSettings
    until: float


# A verified key is trusted for a few seconds so the hot path skips the lookup; a revoked
# key or a settings change takes effect within that time.
_KEY_TTL = 10.0
_known_keys: dict[str, _KnownKey] = {}


def _known(api_key: str | None) -> tuple[str, StoreSettings] | None:
    known = _known_keys.get(hash_secret(api_key)) if api_key else None
    if known is not None and known.until > time.monotonic():
        return known.store_id, known.settings
    return None


def _authenticate(svc: Services, api_key: str | None) -> tuple[str, StoreSettings]:
    digest = hash_secret(api_key) if api_key else ""
    with svc.readers() as session:
        store = authenticate(session, api_key)
        settings = store_settings(store)
    if len(_known_keys) > 10_000:
        _known_keys.clear()
    _known_keys[digest] = _KnownKey(store.id, settings, time.monotonic() + _KEY_TTL)
    return store.id, settings


@router.post(
    "/v1/events",
    response_model=IngestResponse,
    summary="Send one event or a batch of up to 1,000",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": EventBatch.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
        }
    },
    responses={400: {}, 401: {}, 413: {}, 422: {}},
)
async def post_events(request: Request) -> Response:
    """Events are stored once per id and applied in the same transaction; the answer
    comes after the commit. ``duplicate`` means this store sent that id before."""
    svc = services(request)
    api_key = bearer_key(request)
    known = _known(api_key)
    if known is None:
        known = await run_in_threadpool(_authenticate, svc, api_key)
    store_id, settings = known
    events = parse_events(await read_limited_body(request))
    now = svc.clock.now()
    refuse_future(events, now)
    unit = IngestUnit(store_id=store_id, settings=settings, events=events, now=now)
    result = await svc.writer.run_batch(ingest_group, unit)
    for event, outcome in zip(events, result["results"], strict=True):
        _ingested(event.type, outcome["status"]).inc()
    return Response(orjson.dumps(result), media_type="application/json")


@functools.cache
def _ingested(event_type: str, status: str) -> Any:
    # labels() takes the metric's lock and builds its key on every call (~10 us)
    return EVENTS_INGESTED.labels(event_type, status)


# The same endpoint as a bare Starlette route, matched before FastAPI's: this hot path
# skips the dependency machinery (about half the cost of a request here, performance.md
# B1) while the FastAPI route above keeps it in the OpenAPI document.
fast_route = Route("/v1/events", post_events, methods=["POST"])

ProblemRenderer = Callable[[int, dict[str, Any]], Response]
PATH = "/v1/events"


def _route_path(scope: Scope) -> str:
    """The path the router matches: without the app's mount point (``root_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


class IngestEdge:
    """ASGI middleware that answers ``POST /v1/events`` itself and passes everything else on.

    Installed with ``app.add_middleware(IngestEdge, render=problem_response)``, it sits
    inside FastAPI's error middleware (an unexpected error still gets the app's 500
    problem) but ahead of its exception middleware, exit stack, router (a dozen routes
    matched in turn) and the route's request wrapper: 250-300 req/s more on the reference
    box (docs/benchmarks.md, M1). A :class:`~cartback.errors.ProblemError` is rendered
    with ``render``, the same function the app's handler uses, so answers do not change.
    The FastAPI route stays, for the OpenAPI document.
    """

    def __init__(self, app: ASGIApp, *, render: ProblemRenderer) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await post_events(request)
        except ProblemError as exc:
            response = self.render(exc.status, exc.to_problem(request.url.path))
        await response(scope, receive, send)
