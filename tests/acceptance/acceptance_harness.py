"""Running the real ``cartback`` command as subprocesses, and watching what it does.

Nothing here waits for a schedule: tests make work due at once (events whose
``occurred_at`` is in the past) and :func:`wait_for` polls for *state* (a row, an
email at the sink) while the processes do that work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from cartback.core.db import make_engine
from support.smtp import free_port

T = TypeVar("T")

# Generous: this is how long a process may take to do work that is already due,
# not a schedule. A healthy run takes well under a second per wait.
DEADLINE = 60.0
POLL = 0.1


def cli_command() -> list[str]:
    """The installed ``cartback`` script next to this interpreter, else ``python -m``."""
    script = shutil.which("cartback", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-m", "cartback.cli.main"]


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def wait_for(
    predicate: Callable[[], T | None],
    *,
    what: str,
    timeout: float = DEADLINE,
    alive: Callable[[], None] | None = None,
) -> T:
    """Poll ``predicate`` every 0.1 s until it returns something truthy; return that.

    ``alive`` raises when a process the test relies on has died, so a crash fails the
    test at once with its logs instead of after the whole deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


# --- databases --------------------------------------------------------------------


# --- processes --------------------------------------------------------------------


@dataclass
class Proc:
    """One running ``cartback`` process; its output goes to files (no pipe can fill up)."""

    name: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    expect_exit: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines the process wrote on stderr."""
        lines = []
        for line in self.stderr().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines

    def check_alive(self) -> None:
        if self.popen.poll() is not None and not self.expect_exit:
            raise AssertionError(
                f"{self.name} exited with {self.popen.returncode}\n"
                f"--- stdout\n{self.stdout()}\n--- stderr\n{self.stderr()}"
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, like a machine losing power."""
        self.expect_exit = True
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        self.expect_exit = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass
class Cartback:
    """The command line against one database, with a scratch directory."""

    database_url: str
    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def env(self, **settings: str | None) -> dict[str, str]:
        """The environment for a process: no CARTBACK_* leaks in from outside; ``None``
        drops a setting."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
        values: dict[str, str | None] = {
            "CARTBACK_DATABASE_URL": self.database_url,
            "CARTBACK_POLL_INTERVAL": "0.1",
            "CARTBACK_OUTBOX_DIR": str(self.workdir / "outbox"),
        }
        values.update({f"CARTBACK_{k.upper()}": v for k, v in settings.items()})
        env.update({k: v for k, v in values.items() if v is not None})
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, **settings: str | None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*cli_command(), *args],
            env=self.env(**settings),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"cartback {' '.join(args)} exited {done.returncode}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
        return done

    def spawn(self, *args: str, name: str | None = None, **settings: str | None) -> Proc:
        name = name or args[0]
        index = len(self.procs)
        out = self.workdir / f"{index}-{name}.out"
        err = self.workdir / f"{index}-{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                [*cli_command(), *args],
                env=self.env(**settings),
                cwd=self.workdir,
                stdout=stdout,
                stderr=stderr,
            )
        proc = Proc(name, popen, out, err)
        self.procs.append(proc)
        return proc

    def serve(self, command: str = "serve", **settings: str | None) -> Server:
        """``cartback serve`` or ``cartback run`` on a free port; returns once it answers."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = {"port": str(port), "base_url": base, **settings}
        proc = self.spawn(command, **settings)
        server = Server(proc, base)
        wait_for(server.healthy, what=f"{command} to answer on {base}", alive=self.check_alive)
        return server

    def check_alive(self) -> None:
        for proc in self.procs:
            proc.check_alive()

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()

    def create_store(self, name: str = "Acme Shoes", **options: str) -> StoreKeys:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        out = self.run("store", "create", name, "--json", *flags).stdout
        body = json.loads(out)
        return StoreKeys(body["id"], body["api_key"], body["public_key"])

    def engine(self) -> Engine:
        return make_engine(self.database_url)


@dataclass(frozen=True)
class StoreKeys:
    id: str
    api_key: str
    public_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Server:
    proc: Proc
    base_url: str

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def post_events(self, store: StoreKeys, *events: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base_url}/v1/events", json=list(events), headers=store.auth, timeout=30
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def get(self, path: str, store: StoreKeys | None = None, **kwargs: Any) -> httpx.Response:
        headers = store.auth if store else {}
        return httpx.get(f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def cart(self, store: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
        response = self.get(f"/v1/carts/{cart_id}", store)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stats(self, store: StoreKeys) -> dict[str, Any]:
        response = self.get("/v1/stats", store)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


# --- an SMTP server that never answers the end of DATA --------------------------------


@dataclass
class _Hang:
    data_started: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started.set()
        await asyncio.Event().wait()  # never set: the client waits for a reply forever
        return "250 never"  # pragma: no cover


class HangingSmtp:
    """Answers EHLO, MAIL, RCPT and DATA, takes the message, then goes silent: the
    sender cannot know whether the message was accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Hang()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        # A long client timeout, so the worker is still inside the send when it is killed
        # (the default 10 s would end the send with smtp.data_lost on its own).
        return f"smtp://127.0.0.1:{self.port}?timeout=600"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
