"""Helpers the browser tests and their fixtures share (imported by module name, like
tests/acceptance/acceptance_harness.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import BrowserContext, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK = "127.0.0.1"
# the open_context fixture: browser.new_context(**options), guarded and recorded
OpenContext = Callable[..., BrowserContext]


@dataclass
class LiveServer:
    url: str
    api: httpx.Client


@dataclass
class NetworkLog:
    """Every request the pages made, and which of them were not on this machine."""

    urls: list[str] = field(default_factory=list)
    stubbed_hosts: set[str] = field(default_factory=set)
    blocked: list[str] = field(default_factory=list)

    def stub_host(self, host: str) -> None:
        """Answer requests to ``host`` (the test shop) locally instead of failing."""
        self.stubbed_hosts.add(host)

    def hosts(self) -> set[str]:
        return {host for url in self.urls if (host := host_of(url))}


def host_of(url: str) -> str | None:
    parts = urlsplit(url)
    return parts.hostname if parts.scheme in ("http", "https", "ws", "wss") else None


class Outage:
    """An app that, while ``down``, answers the snippet's endpoints (``/v1/collect...``)
    503 as a cartback that is away would; the store's own pages keep working."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.down and scope["type"] == "http" and scope["path"].startswith("/v1/collect"):
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class DemoServer:
    """The app `cartback demo` serves (cartback plus the demo store), and the store's key."""

    live: LiveServer
    api_key: str
    store_id: str
    outage: Outage

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def cart(self, cart_id: str) -> dict[str, Any]:
        response = self.live.api.get(f"/v1/carts/{cart_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def has_cart(self, cart_id: str) -> bool:
        response = self.live.api.get(f"/v1/carts/{cart_id}", headers=self.auth)
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200


@dataclass
class CollectLog:
    """What the pages' snippet sent to ``POST /v1/collect`` (bodies, as sent) and what
    cartback answered; recorded as the requests pass, never changed."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", self._request)
        context.on("response", self._response)
        context.on("requestfailed", self._failed)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = [event for body in self.bodies for event in body["events"]]
        return [event for event in found if kind is None or event["type"] == kind]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    @staticmethod
    def _is_collect(request: Request) -> bool:
        return request.method == "POST" and urlsplit(request.url).path == "/v1/collect"

    def _request(self, request: Request) -> None:
        if self._is_collect(request):
            self.bodies.append(json.loads(request.post_data or "{}"))

    def _response(self, response: Response) -> None:
        if self._is_collect(response.request):
            self.statuses.append(response.status)

    def _failed(self, request: Request) -> None:
        if self._is_collect(request):
            self.failures.append(request.failure or "failed")
