"""One handler renders every error as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cartback.errors import ProblemError

log = logging.getLogger("cartback.api")
PROBLEM = "application/problem+json"


def problem_response(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.to_problem(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "request", "message": "invalid"}
        body = {
            "type": "https://cartback.dev/problems/invalid_request",
            "title": "Unprocessable content",
            "status": 422,
            "detail": f"{first['field']}: {first['message']}",
            "code": "invalid_request",
            "instance": request.url.path,
            "errors": errors,
        }
        return problem_response(422, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {
            "type": "about:blank",
            "title": str(exc.detail),
            "status": exc.status_code,
            "detail": str(exc.detail),
            "code": f"http_{exc.status_code}",
            "instance": request.url.path,
        }
        return problem_response(exc.status_code, body)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("api.unexpected_error", extra={"path": request.url.path})
        body = {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": "Something went wrong on our side; nothing you sent was lost. Retry later.",
            "code": "internal_error",
        }
        return problem_response(500, body)
