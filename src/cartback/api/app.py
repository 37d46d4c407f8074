"""The HTTP surface: every router, the problem handler, the OpenAPI docs at /docs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from cartback import __version__
from cartback.analytics.api import router as stats_router
from cartback.api import carts, ops, outbox, problems
from cartback.core.services import Services
from cartback.ingest.api import router as ingest_router
from cartback.tracking.api import router as tracking_router

DESCRIPTION = """Self-hosted abandoned-cart recovery.

Authenticate with the store's secret API key: `Authorization: Bearer cb_sk_...`.
Errors are `application/problem+json` (RFC 9457) with a stable `code`."""


def build_api(svc: Services) -> FastAPI:
    # the docs pages load Swagger UI and ReDoc from files in the package, never a CDN
    app = FastAPIOffline(title="cartback", version=__version__, description=DESCRIPTION)
    app.state.services = svc
    problems.install(app)
    app.include_router(ingest_router)
    app.include_router(carts.router)
    app.include_router(stats_router)
    app.include_router(tracking_router)
    app.include_router(ops.router)
    app.include_router(outbox.router)
    return app
