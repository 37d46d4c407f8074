"""The storefront snippet's cost: its size on the wire, and the main-thread time it adds.

- **Size.** ``GET /cartback.js`` as cartback serves it (minified by rjsmin at serve time),
  plain and gzip-encoded (what a browser that accepts gzip receives), next to the readable
  source. Target (the snippet's issue): at most 15 kB minified + gzipped.
- **Main-thread time.** The demo store's product page (``cartback demo``'s app, served by
  uvicorn in a thread on 127.0.0.1, SQLite) is loaded in headless Chromium
  (/usr/bin/chromium through Playwright) with the snippet's tag and without it, alternating
  A/B in the same run, each load in a fresh browser context (a first visit: nothing
  cached). Chromium's performance timeline (CDP ``Performance.getMetrics``) gives the
  renderer main thread's ``TaskDuration`` (every task: parsing, style, layout, script,
  garbage collection) and ``ScriptDuration``; each load counts from before the navigation
  to ``--settle`` ms after ``load``, long enough for the snippet's own work (its settings
  request, its first send 200 ms after the product view). Added time = median(with) -
  median(without); ratio = median(with) / median(without). First contentful paint is
  compared too: the tag is ``async``, so it must not delay the first paint.

Both variants go through the same Playwright route (the "without" page is the same HTML
with the snippet's ``<script>`` removed), so routing costs them alike. The demo shop's own
script runs in both; with the snippet absent it only pushes onto an array.

Run:  .venv/bin/python bench/snippet.py [--runs 30] [--settle 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Browser, Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
PAGE = "/demo/p/waxed-jacket"
TAG = re.compile(r"<script async src='/cartback\.js'[^>]*></script>")
TARGET_GZIP_BYTES = 15 * 1000  # "aim <= 15 kB"
# Long tasks (> 50 ms) on the main thread, recorded from the start of the document.
LONG_TASKS = (
    "window.__longTasks = [];"
    "new PerformanceObserver(list => { for (const t of list.getEntries())"
    " window.__longTasks.push(t.duration); }).observe({type: 'longtask', buffered: true});"
)


@contextmanager
def demo_server() -> Iterator[str]:
    """``cartback demo``'s app (cartback + the demo store) on a fresh SQLite file."""
    from cartback.app import build_runtime
    from cartback.core.db import transaction
    from cartback.demo.store import create_demo_store, demo_app
    from cartback.settings import Settings

    port = c.free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cartback-bench-snippet-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/demo.db",
            base_url=base,
            secret_key="bench-secret-key-not-for-production",  # type: ignore[arg-type]
            outbox_dir=f"{tmp}/outbox",
        )
        runtime = build_runtime(settings)
        with transaction(runtime.sessions) as session:
            store = create_demo_store(session, now=runtime.clock.now(), base_url=base).store
            # every load sends requests from this one IP: no per-IP limit in the way
            snippet = dict(store.settings["snippet"], rate_per_ip=100_000, rate_per_store=100_000)
            store.settings = {**store.settings, "snippet": snippet}
            store_id = store.id
        server = uvicorn.Server(
            uvicorn.Config(
                demo_app(runtime, store_id),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            c.wait_http(f"{base}/demo/")
            yield base
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            runtime.close()


def sizes(base: str) -> dict[str, int]:
    from cartback.snippet.bundle import source

    plain = httpx.get(f"{base}/cartback.js", headers={"Accept-Encoding": "identity"})
    served = httpx.get(f"{base}/cartback.js", headers={"Accept-Encoding": "gzip"})
    return {
        "source": len(source().encode()),
        "minified": len(plain.content),
        "gzip_served": int(served.headers["content-length"]),
        "gzip_default_level": len(gzip.compress(plain.content)),
    }


def load(browser: Browser, base: str, *, snippet: bool, settle_ms: int) -> dict[str, float]:
    """One first visit to the product page; the main thread's work, in milliseconds."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        page = context.new_page()

        def serve(route: Route) -> None:
            answer = route.fetch()
            html = answer.text()
            route.fulfill(response=answer, body=html if snippet else TAG.sub("", html))

        page.route(f"{base}{PAGE}", serve)
        page.add_init_script(LONG_TASKS)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        before = metrics(cdp.send("Performance.getMetrics"))
        page.goto(f"{base}{PAGE}", wait_until="load")
        page.wait_for_timeout(settle_ms)
        after = metrics(cdp.send("Performance.getMetrics"))
        paint = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        long_tasks = page.evaluate("window.__longTasks")
        loaded = page.evaluate("document.querySelector('script[src=\"/cartback.js\"]') !== null")
        assert loaded == snippet, "the page is not the variant asked for"
        return {
            "task_ms": (after["TaskDuration"] - before["TaskDuration"]) * 1000,
            "script_ms": (after["ScriptDuration"] - before["ScriptDuration"]) * 1000,
            "fcp_ms": float(paint),
            "long_tasks": float(len(long_tasks)),
            "longest_task_ms": float(max(long_tasks, default=0)),
        }
    finally:
        context.close()


def metrics(answer: dict[str, Any]) -> dict[str, float]:
    return {m["name"]: float(m["value"]) for m in answer["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="page loads per variant")
    parser.add_argument("--settle", type=int, default=1000, help="ms to count after load")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    info = c.machine()
    print("# Snippet benchmark: size and main-thread time")
    print(
        f"Command: `{c.command_line()}`; {args.runs} first visits per variant to the demo "
        f"store's product page, alternating, {args.settle} ms counted after load\n"
    )
    c.print_machine(info)
    runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    with demo_server() as base, sync_playwright() as playwright:
        size = sizes(base)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        info["chromium"] = browser.version
        try:
            for variant in ("without", "with"):  # warm-up, not reported
                load(browser, base, snippet=variant == "with", settle_ms=args.settle)
            started = time.monotonic()
            for _ in range(args.runs):
                for variant in ("without", "with"):
                    runs[variant].append(
                        load(browser, base, snippet=variant == "with", settle_ms=args.settle)
                    )
            seconds = time.monotonic() - started
        finally:
            browser.close()

    print(f"- Chromium {info['chromium']}; {2 * args.runs} measured loads in {seconds:.0f} s\n")
    print("## Size\n")
    print(
        c.table(
            ["", "bytes", "target"],
            [
                ["readable source (src/cartback/snippet/cartback.js)", size["source"], ""],
                ["minified (rjsmin), as served", size["minified"], ""],
                [
                    "minified + gzip, as served (level 9)",
                    size["gzip_served"],
                    f"<= {TARGET_GZIP_BYTES:,}: "
                    f"{c.verdict(size['gzip_served'], TARGET_GZIP_BYTES, higher_is_better=False)}",
                ],
                ["minified + gzip at level 6 (a proxy's default)", size["gzip_default_level"], ""],
            ],
        )
    )

    def med(variant: str, key: str) -> float:
        return c.median([r[key] for r in runs[variant]])

    def p90(variant: str, key: str) -> float:
        values = sorted(r[key] for r in runs[variant])
        return values[min(len(values) - 1, int(0.9 * len(values)))]

    rows = []
    for key, label in (
        ("task_ms", "main-thread tasks (TaskDuration), ms"),
        ("script_ms", "script (ScriptDuration), ms"),
        ("fcp_ms", "first contentful paint, ms"),
    ):
        without, with_ = med("without", key), med("with", key)
        rows.append(
            [label, without, with_, with_ - without, c.ratio(with_, without), p90("with", key)]
        )
    print("\n## Main-thread time on the product page (medians)\n")
    print(
        c.table(
            ["", "without snippet", "with snippet", "added", "ratio", "with: p90"],
            rows,
        )
    )
    for variant in ("without", "with"):
        loads = [r for r in runs[variant] if r["long_tasks"]]
        longest = max((r["longest_task_ms"] for r in runs[variant]), default=0)
        print(
            f"- long tasks (> 50 ms), {variant} the snippet: in {len(loads)} of "
            f"{len(runs[variant])} loads, {sum(r['long_tasks'] for r in loads):.0f} in all"
            + (f", the longest {longest:.0f} ms" if loads else "")
        )
    c.write_json(
        args.json,
        {"machine": info, "command": c.command_line(), "size": size, "runs": runs},
    )


if __name__ == "__main__":
    main()
