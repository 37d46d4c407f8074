"""The callbacks' own problems, rendered like every ProblemError (problem+json).

ProblemError (cartback.errors)
├── Forbidden            403  a signature, token or credential that does not verify
└── Unavailable          503  we could not check the request now (e.g. the SNS signing
                              certificate could not be fetched); the provider retries
"""

from __future__ import annotations

from cartback.errors import ProblemError


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class Unavailable(ProblemError):
    status = 503
    title = "Service unavailable"
