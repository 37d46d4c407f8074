"""``GET /cartback.js``: the snippet a store adds with one tag::

    <script async src="https://cartback.example/cartback.js" data-key="cb_pk_..."></script>

Cached by browsers for a day and then revalidated with its ETag (a 304 costs no body);
``stale-while-revalidate`` lets a week-old copy run while the new one is fetched. The
URL carries no version, so a day is the longest a fixed snippet takes to reach shoppers.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cartback.snippet.bundle import bundle

router = APIRouter(include_in_schema=False)

CACHE_CONTROL = "public, max-age=86400, stale-while-revalidate=604800"


@router.get("/cartback.js")
def snippet(request: Request) -> Response:
    found = bundle()
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": found.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        # stores load it from their own origin; a page with COEP may still embed it
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if _matches(request.headers.get("if-none-match"), found.etag):
        return Response(status_code=304, headers=headers)
    if _accepts_gzip(request.headers.get("accept-encoding")):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type="text/javascript", headers=headers)
    return Response(found.body, media_type="text/javascript", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: ``*``, or any listed tag equal to ours (``W/`` ignored).

    >>> _matches('W/"a", "b"', '"b"')
    True
    """
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """``gzip`` listed without ``q=0``.

    >>> _accepts_gzip("br, gzip;q=0.8"), _accepts_gzip("gzip;q=0"), _accepts_gzip(None)
    (True, False, False)
    """
    for part in (accept_encoding or "").lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "x-gzip"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
