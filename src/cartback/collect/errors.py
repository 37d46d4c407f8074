"""Problems only the snippet's endpoints answer (rendered like every ProblemError)."""

from __future__ import annotations

from cartback.errors import ProblemError


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported media type"


class TooManyRequests(ProblemError):
    """A rate limit said no; ``retry_after`` is whole seconds (the Retry-After header)."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, code: str, retry_after: int) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
