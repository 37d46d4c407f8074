"""The error tree of cartback.

    CartbackError
    ├── ConfigError            bad settings; the CLI prints it without a traceback
    └── ProblemError           an expected outcome an API caller must hear about (4xx)
        ├── BadRequest         400  malformed body, wrong types
        ├── Unauthorized       401  missing or wrong API key
        ├── Forbidden          403  a callback's signature, token or credential does not verify
        ├── NotFound           404  no such thing in this store
        ├── Conflict           409
        ├── PayloadTooLarge    413
        ├── Unprocessable      422  well-formed but invalid (a field named in ``errors``)
        └── Unavailable        503  the request cannot be checked now (a provider's signing
                                    certificate could not be fetched); the provider retries

Every ProblemError is rendered by one handler as ``application/problem+json``
(RFC 9457) with a stable ``code``. Channel errors live in ``cartback.channels``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CartbackError(Exception):
    pass


class ConfigError(CartbackError):
    pass


class ProblemError(CartbackError):
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, code: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.errors = errors or []

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://cartback.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(ProblemError):
    status = 400
    title = "Bad request"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Payload too large"


class Unprocessable(ProblemError):
    status = 422
    title = "Unprocessable content"


class Unavailable(ProblemError):
    status = 503
    title = "Service unavailable"
