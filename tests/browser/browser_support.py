"""Helpers the browser tests and their fixtures share (imported by module name, like
tests/acceptance/acceptance_harness.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

LOOPBACK = "127.0.0.1"


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
