"""Experiment (not a metric): cartback's real ASGI app with the database write replaced by
an already-completed future, to show what the HTTP layer (FastAPI routing, middleware, auth
cache, body read, pydantic validation, metrics, response) costs on its own.

    CARTBACK_DATABASE_URL=sqlite:///x.db .venv/bin/python bench/experiments/http_only_app.py PORT

With HTTP_ONLY_INLINE_AUTH=1 the key check runs on the event loop instead of the thread
pool (see docs/benchmarks.md). Everything else (store lookup, key cache, parse_events) is
the real code. Compare with bench/baseline_app.py under the same wrk script
(bench/ingest.py --http-only does this).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from typing import Any

import uvicorn

from cartback.app import build_runtime, create_app
from cartback.settings import load_settings


class _NoWrite:
    def submit(self, fn: Any) -> Future[Any]:
        future: Future[Any] = Future()
        # the shape _ingest returns, without touching the database
        future.set_result(
            {"accepted": 1, "duplicates": 0, "results": [{"id": "x", "status": "accepted"}]}
        )
        return future

    def stop(self) -> None:
        pass


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def main() -> None:
    if os.environ.get("HTTP_ONLY_INLINE_AUTH") == "1":
        # experiment: call _authenticate (a dict lookup once cached) on the event loop
        # instead of hopping to the AnyIO thread pool for every request
        from cartback.ingest import api

        api.run_in_threadpool = _inline  # type: ignore[assignment]
    runtime = build_runtime(load_settings(), migrate=False)
    runtime._writer = _NoWrite()  # type: ignore[assignment]
    app = create_app(runtime)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
