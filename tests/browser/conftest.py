"""Browser tier: the real app served by uvicorn on loopback, driven by Debian's Chromium
through Playwright (sync API). `playwright install` cannot download a browser here, so
the tests use /usr/bin/chromium; scripts/ensure-chromium installs it.

Nothing a page does may leave the machine: every request is recorded and checked at the
end of the test. Hosts a test names as the shop's (``network.stub_host``) are answered by
a local stand-in; any other non-loopback request is aborted and fails the test. Chromium
also resolves no host name at all (``--host-resolver-rules``), because Playwright does
not route the hops of a redirect (microsoft/playwright#33882): the shop page that a
restore link redirects to is requested by the browser but never resolved or fetched.

The browser plays a shopper, not a robot: it reports no ``navigator.webdriver`` and a plain
Chrome User-Agent, else cartback's bot filter (cartback.collect.bots) would rightly set
aside every cart the storefront snippet sends from it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from browser_support import (
    LOOPBACK,
    CollectLog,
    DemoServer,
    LiveServer,
    NetworkLog,
    OpenContext,
    Outage,
    host_of,
)
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)
from starlette.types import ASGIApp

from cartback.app import Runtime, create_app
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.demo.store import create_demo_store, demo_app
from cartback.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # no DNS look-up ever leaves the machine, even for a redirect Playwright cannot route
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    # navigator.webdriver is false, as in a shopper's browser
    "--disable-blink-features=AutomationControlled",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
# a grey placeholder for the shop's product images, so a screenshot shows where they go
_PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160">'
    b'<rect width="160" height="160" fill="#d1d5db"/></svg>'
)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
            "Run scripts/ensure-chromium (as root), then run the tests again.",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """Bound before the settings are built, so base_url can name its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, listening_socket: socket.socket) -> Settings:
    port = listening_socket.getsockname()[1]
    return Settings(
        database_url=database_url,
        base_url=f"http://{LOOPBACK}:{port}",
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
        outbox_dir=str(tmp_path / "outbox"),
    )


@contextmanager
def serving(app: ASGIApp, url: str, listening_socket: socket.socket) -> Iterator[LiveServer]:
    """``app`` served by uvicorn in a thread on ``listening_socket`` (whose URL is ``url``)."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening_socket]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    api = httpx.Client(base_url=url, timeout=10)
    try:
        yield LiveServer(url=url, api=api)
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def live_server(
    runtime: Runtime, settings: Settings, listening_socket: socket.socket
) -> Iterator[LiveServer]:
    with serving(create_app(runtime), settings.base_url, listening_socket) as live:
        yield live


@pytest.fixture
def demo_server(
    runtime: Runtime, settings: Settings, clock: ManualClock, listening_socket: socket.socket
) -> Iterator[DemoServer]:
    """The demo store and the app `cartback demo` serves, on the port the settings name."""
    with transaction(runtime.sessions) as session:
        made = create_demo_store(session, now=clock.now(), base_url=settings.base_url)
        store_id, api_key = made.store.id, made.api_key
    outage = Outage(demo_app(runtime, store_id))
    with serving(outage, settings.base_url, listening_socket) as live:
        yield DemoServer(live, api_key, store_id, outage)


@pytest.fixture
def network() -> NetworkLog:
    return NetworkLog()


@pytest.fixture(scope="session")
def user_agent(browser: Browser) -> str:
    """Chrome's own User-Agent for this version, without the "Headless" a bot filter reads."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


@pytest.fixture
def collected() -> CollectLog:
    return CollectLog()


@pytest.fixture
def open_context(
    browser: Browser, network: NetworkLog, collected: CollectLog, user_agent: str
) -> Iterator[OpenContext]:
    """Opens browser contexts (``new_context`` options) whose requests are all recorded and
    kept on this machine; a test may open a second one, a shopper's other device."""
    opened: list[BrowserContext] = []

    def record(request: Request) -> None:
        network.urls.append(request.url)

    def guard(route: Route) -> None:
        host = host_of(route.request.url)
        if host is None or host == LOOPBACK:
            route.continue_()
        elif host in network.stubbed_hosts:
            if route.request.resource_type == "image":
                route.fulfill(status=200, content_type="image/svg+xml", body=_PLACEHOLDER)
            else:
                route.fulfill(status=200, content_type="text/html", body="<h1>Shop</h1>")
        else:
            network.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def open_(**options: Any) -> BrowserContext:
        options = {"viewport": {"width": 1100, "height": 900}, "user_agent": user_agent, **options}
        ctx = browser.new_context(**options)
        opened.append(ctx)
        collected.watch(ctx)
        ctx.on("request", record)
        ctx.route("**/*", guard)
        return ctx

    try:
        yield open_
    finally:
        for ctx in opened:
            ctx.unroute_all(behavior="ignoreErrors")
            ctx.close()
    assert network.blocked == [], f"pages requested hosts off this machine: {network.blocked}"
    off = network.hosts() - {LOOPBACK} - network.stubbed_hosts
    assert off == set(), f"pages requested hosts off this machine: {sorted(off)}"


@pytest.fixture
def context(open_context: OpenContext) -> BrowserContext:
    return open_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    made = context.new_page()
    made.set_default_timeout(10_000)
    return made


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots for a person to look at (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
