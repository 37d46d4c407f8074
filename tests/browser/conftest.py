"""Browser tier: the real app served by uvicorn on loopback, driven by Debian's Chromium
through Playwright (sync API). `playwright install` cannot download a browser here, so
the tests use /usr/bin/chromium; scripts/ensure-chromium installs it.

Nothing a page does may leave the machine: every request is recorded and checked at the
end of the test. Hosts a test names as the shop's (``network.stub_host``) are answered by
a local stand-in; any other non-loopback request is aborted and fails the test. Chromium
also resolves no host name at all (``--host-resolver-rules``), because Playwright does
not route the hops of a redirect (microsoft/playwright#33882): the shop page that a
restore link redirects to is requested by the browser but never resolved or fetched.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from browser_support import LOOPBACK, LiveServer, NetworkLog, host_of
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)

from cartback.app import Runtime, create_app
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


@pytest.fixture
def live_server(
    runtime: Runtime, settings: Settings, listening_socket: socket.socket
) -> Iterator[LiveServer]:
    config = uvicorn.Config(
        create_app(runtime), log_level="warning", access_log=False, ws="none", lifespan="on"
    )
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
    api = httpx.Client(base_url=settings.base_url, timeout=10)
    try:
        yield LiveServer(url=settings.base_url, api=api)
    finally:
        api.close()
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def network() -> NetworkLog:
    return NetworkLog()


@pytest.fixture
def context(browser: Browser, network: NetworkLog) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})

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

    ctx.on("request", record)
    ctx.route("**/*", guard)
    try:
        yield ctx
    finally:
        ctx.unroute_all(behavior="ignoreErrors")
        ctx.close()
    assert network.blocked == [], f"pages requested hosts off this machine: {network.blocked}"
    off = network.hosts() - {LOOPBACK} - network.stubbed_hosts
    assert off == set(), f"pages requested hosts off this machine: {sorted(off)}"


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
