"""The storefront snippet's endpoints: unauthenticated but for the store's public key.

========================================  =======================================================
route                                     answer
========================================  =======================================================
GET     /v1/collect/config?key=cb_pk_...  the snippet's settings (SnippetConfig), cacheable
                                          for 5 minutes
POST    /v1/collect                       204, no body: nothing can be read back
OPTIONS /v1/collect[?key=cb_pk_...]       the CORS preflight (only ``application/json`` needs
                                          one; ``sendBeacon``'s ``text/plain`` does not)
========================================  =======================================================

In order, every request: reads at most 16 KiB (413); names its store by the public key
(401: missing, unknown, or the secret key, ``secret_key_not_allowed``); checks the
``Origin`` against the store's allowlist (403 when present and not allowed; CORS headers
only for an allowed one); spends a token of the per-IP and the per-store limit (429 with
``Retry-After``); validates (400 / 422 naming the field); then writes through the
group-commit writer and answers after the commit. A bot gets the same ``204``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from cartback.collect import service, visitors
from cartback.collect.config import snippet_config
from cartback.collect.errors import TooManyRequests, UnsupportedMediaType
from cartback.collect.limits import RateLimits, retry_after
from cartback.collect.schemas import (
    COLLECT_TYPES,
    MAX_BODY_BYTES,
    MAX_EVENTS,
    CollectBody,
    SnippetConfig,
)
from cartback.core.services import Services, services
from cartback.errors import BadRequest, Forbidden, PayloadTooLarge, ProblemError, Unprocessable

router = APIRouter(tags=["snippet"])

PROBLEM = "application/problem+json"
CONFIG_MAX_AGE = 300
# A public key's store is trusted this long (our clock): a settings change (origins,
# consent mode) reaches the snippet's endpoints within it.
KEY_TTL = timedelta(seconds=10)
ORIGINS_TTL = timedelta(seconds=60)
_MEDIA_TYPES = frozenset({"", "text/plain", "application/json"})
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not JSON"},
    401: {"description": "No public key, an unknown one, or the secret key"},
    403: {"description": "The Origin is not in the store's snippet.origins"},
    413: {"description": "The body is over 16 KiB"},
    415: {"description": "Not text/plain or application/json"},
    422: {"description": "A field is missing or invalid (named in errors)"},
    429: {"description": "Over the per-IP or per-store limit; see Retry-After"},
}


@dataclass(frozen=True)
class _Known:
    store: service.SnippetStore
    until: datetime


class _Edge:
    """Per app: the stores of public keys seen lately, the limits, every store's origins."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.limits = RateLimits(svc.clock)
        self.keys: dict[str, _Known] = {}
        self.origins: tuple[datetime, frozenset[str]] | None = None

    async def store(self, key: str | None) -> service.SnippetStore:
        key = key.strip() if key else None
        now = self.svc.clock.now()
        known = self.keys.get(key) if key else None
        if known is not None and known.until > now:
            return known.store
        store = await run_in_threadpool(self._find, key)
        if len(self.keys) > 10_000:
            self.keys.clear()
        self.keys[str(key)] = _Known(store, now + KEY_TTL)
        return store

    def _find(self, key: str | None) -> service.SnippetStore:
        with self.svc.readers() as session:
            return service.find_store(session, key)

    async def any_store_allows(self, origin: str) -> bool:
        now = self.svc.clock.now()
        if self.origins is None or self.origins[0] <= now:
            self.origins = (now + ORIGINS_TTL, await run_in_threadpool(self._every_origin))
        return origin.lower() in self.origins[1]

    def _every_origin(self) -> frozenset[str]:
        with self.svc.readers() as session:
            return service.every_origin(session)

    def limit(self, request: Request, store: service.SnippetStore) -> None:
        snippet = store.settings.snippet
        ip = request.client.host if request.client else "unknown"
        for scope, key, per_minute in (
            ("ip", f"{store.id}|{ip}", snippet.rate_per_ip),
            ("store", store.id, snippet.rate_per_store),
        ):
            if not self.limits.allow(scope, key, per_minute):
                raise TooManyRequests(
                    f"Over the {scope} limit of {per_minute} requests a minute",
                    code=f"rate_limited_{scope}",
                    retry_after=retry_after(per_minute),
                )


def _edge(request: Request) -> _Edge:
    found: _Edge | None = getattr(request.app.state, "collect_edge", None)
    if found is None:
        found = request.app.state.collect_edge = _Edge(services(request))
    return found


def _allowed(store: service.SnippetStore, origin: str | None) -> str | None:
    """The request's Origin when the store allows it; 403 when it names another one."""
    if origin is None:
        return None  # not a browser's cross-origin request: nothing to allow or refuse
    if origin.lower() not in service.allowed_origins(store.settings):
        raise Forbidden(
            f"The origin {origin[:200]!r} is not in this store's snippet.origins",
            code="origin_not_allowed",
        )
    return origin


def _cors(origin: str | None) -> dict[str, str]:
    headers = {"Vary": "Origin"}
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


def _problem(request: Request, exc: ProblemError, origin: str | None) -> JSONResponse:
    headers = _cors(origin)
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        exc.to_problem(request.url.path),
        status_code=exc.status,
        media_type=PROBLEM,
        headers=headers,
    )


# --- GET /v1/collect/config --------------------------------------------------------------------


@router.get(
    "/v1/collect/config",
    summary="The snippet's settings for a store (by its public key)",
    response_model=SnippetConfig,
    responses={k: v for k, v in PROBLEMS.items() if k not in (400, 413, 415, 422)},
)
async def get_config(request: Request) -> Response:
    """Consent mode, the fields to capture from, the prompts and their words. Public (it
    is in every page anyway), for the store's origins, cacheable for 5 minutes."""
    edge = _edge(request)
    origin = request.headers.get("origin")
    allowed = None
    try:
        store = await edge.store(request.query_params.get("key"))
        allowed = _allowed(store, origin)
        edge.limit(request, store)
    except ProblemError as exc:
        return _problem(request, exc, allowed)
    headers = {**_cors(allowed), "Cache-Control": f"public, max-age={CONFIG_MAX_AGE}"}
    config = snippet_config(store.settings)
    return Response(
        orjson.dumps(config.model_dump()), media_type="application/json", headers=headers
    )


# --- POST /v1/collect --------------------------------------------------------------------------


@router.post(
    "/v1/collect",
    summary="The snippet's events for one visitor (up to 20, at most 16 KiB)",
    status_code=204,
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": CollectBody.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
                for media in ("text/plain", "application/json")
            },
        }
    },
    responses={204: {"description": "Stored (or a duplicate, or a bot's)"}, **PROBLEMS},
)
async def post_collect(request: Request) -> Response:
    """Product views, cart updates, checkout starts, captured contacts and prompt answers,
    applied by the same rules as ``POST /v1/events``. Nothing is echoed back."""
    svc = services(request)
    edge = _edge(request)
    allowed = None
    try:
        _media_type(request)
        data = _json(await _read_body(request))
        key = data.get("key")
        store = await edge.store(key if isinstance(key, str) else None)
        allowed = _allowed(store, request.headers.get("origin"))
        edge.limit(request, store)
        body = _validated(data)
        service.refuse_without_consent(body, store.settings.snippet)
        visit = service.plan(
            body,
            store=store,
            now=svc.clock.now(),
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
        await asyncio.wrap_future(svc.writer.submit(lambda s: visitors.collect(s, visit)))
    except ProblemError as exc:
        return _problem(request, exc, allowed)
    return Response(status_code=204, headers=_cors(allowed))


def _media_type(request: Request) -> None:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in _MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Send the body as text/plain or application/json, not {media[:100]!r}",
            code="unsupported_media_type",
        )


async def _read_body(request: Request) -> bytes:
    too_large = PayloadTooLarge(
        f"The body is over the limit of {MAX_BODY_BYTES} bytes", code="body_too_large"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise BadRequest("The body is empty", code="empty_body")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None
    if not isinstance(data, dict):
        raise Unprocessable(
            'Send {"key": ..., "visitor": ..., "events": [...]}', code="invalid_shape"
        )
    return data


def _validated(data: dict[str, Any]) -> CollectBody:
    events = data.get("events")
    if isinstance(events, list) and len(events) > MAX_EVENTS:
        raise Unprocessable(
            f"A request holds at most {MAX_EVENTS} events; this one has {len(events)}",
            code="too_many_events",
            errors=[{"field": "events", "message": f"at most {MAX_EVENTS} events"}],
        )
    try:
        return CollectBody.model_validate(data)
    except ValidationError as exc:
        errors = [_error(err) for err in exc.errors(include_url=False)]
        raise Unprocessable(
            f"{len(errors)} problem(s), first: {errors[0]['field']}: {errors[0]['message']}",
            code="invalid_event",
            errors=errors,
        ) from None


def _error(err: Any) -> dict[str, str]:
    loc = tuple(err["loc"])
    message = str(err["msg"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, "type")
        message = f"unknown or missing event type; expected one of: {', '.join(COLLECT_TYPES)}"
    path = ""
    for piece in loc:
        if isinstance(piece, int):
            path += f"[{piece}]"
        elif piece not in COLLECT_TYPES:  # the discriminator's branch name is noise
            path += ("." if path else "") + str(piece)
    return {"field": path or "body", "message": message}


# --- OPTIONS: CORS preflights ------------------------------------------------------------------


@router.options("/v1/collect", include_in_schema=False)
@router.options("/v1/collect/config", include_in_schema=False)
async def preflight(request: Request) -> Response:
    """A preflight names no store unless the URL carries ``?key=``; then the origin must be
    one that store allows, else one that any store on this instance allows."""
    origin = request.headers.get("origin")
    if origin is None:
        return Response(status_code=204, headers={"Allow": "GET, POST, OPTIONS"})
    edge = _edge(request)
    key = request.query_params.get("key")
    try:
        if key:
            _allowed(await edge.store(key), origin)
        elif not await edge.any_store_allows(origin):
            raise Forbidden(
                f"The origin {origin[:200]!r} is not in any store's snippet.origins",
                code="origin_not_allowed",
            )
    except ProblemError as exc:
        return _problem(request, exc, None)
    return Response(
        status_code=204,
        headers={
            **_cors(origin),
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "7200",
        },
    )
