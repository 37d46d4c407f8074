"""The HTTP surface: every router, the problem handler, the OpenAPI docs at /docs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from cartback import __version__
from cartback.analytics.api import router as stats_router
from cartback.api import carts, contacts, ops, outbox, problems
from cartback.callbacks.api import router as callbacks_router
from cartback.collect import router as collect_router
from cartback.core.services import Services
from cartback.ingest.api import fast_route as ingest_fast_route
from cartback.ingest.api import router as ingest_router
from cartback.ingest.platforms import api as platforms_api
from cartback.snippet.api import router as snippet_router
from cartback.tracking.api import router as tracking_router

DESCRIPTION = """Self-hosted abandoned-cart recovery.

Authenticate with the store's secret API key: `Authorization: Bearer cb_sk_...`.
Errors are `application/problem+json` (RFC 9457) with a stable `code`."""


def build_api(svc: Services) -> FastAPI:
    # the docs pages load Swagger UI and ReDoc from files in the package, never a CDN
    app = FastAPIOffline(title="cartback", version=__version__, description=DESCRIPTION)
    app.state.services = svc
    problems.install(app)
    app.router.routes.append(ingest_fast_route)
    app.include_router(ingest_router)
    app.include_router(carts.router)
    app.include_router(contacts.router)
    app.include_router(stats_router)
    app.include_router(tracking_router)
    app.include_router(snippet_router)
    app.include_router(collect_router)
    app.include_router(callbacks_router)
    app.include_router(platforms_api.router)
    app.include_router(ops.router)
    app.include_router(outbox.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the ``$defs`` of hand-written request schemas (POST
    /v1/events parses its own body) moved to ``components/schemas``, where their
    ``#/components/schemas/...`` references point."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {})
                for media in content.values():
                    components.update(media.get("schema", {}).pop("$defs", {}))
        app.openapi_schema = spec
    return app.openapi_schema
