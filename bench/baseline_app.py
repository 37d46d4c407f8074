"""Baseline B1 (shared/performance.md): a bare Starlette route that parses the body with
orjson and answers 202. Served by the same uvicorn as ``cartback serve`` (uvloop+httptools)."""

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def events(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(status_code=202)


app = Starlette(routes=[Route("/v1/events", events, methods=["POST"])])
