"""Shared helpers for the benchmark scripts (not a test module; nothing here asserts timings).

Everything binds to 127.0.0.1 only, and every loop here is bounded in time.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("CARTBACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")

LIBS = (
    "cartback",
    "uvicorn",
    "uvloop",
    "httptools",
    "starlette",
    "fastapi",
    "sqlalchemy",
    "psycopg",
    "pydantic",
    "orjson",
    "jinja2",
    "css-inline",
    "aiosmtplib",
)


# --- the machine ---------------------------------------------------------------------


def machine(extra_tools: Sequence[str] = ()) -> dict[str, Any]:
    """What the numbers were measured on: CPU, memory, Python and library versions."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    libs = {}
    for name in LIBS:
        try:
            libs[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libs[name] = "-"
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "libs": libs,
    }
    for tool in extra_tools:
        info[tool] = tool_version(tool)
    return info


def tool_version(tool: str) -> str:
    if tool == "wrk":
        out = _run_quiet(["wrk", "--version"])
        return out.splitlines()[0].strip() if out else "missing"
    if tool == "postgresql":
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
                buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
                return f"{version} (shared_buffers={buffers})"
        return "unreachable"
    if tool == "smtp-sink":
        path = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
        )
        if not path:
            return "missing"
        out = _run_quiet(["dpkg-query", "-W", "-f=${Version}", "postfix"])
        return f"postfix {out.strip()}" if out else path
    return "?"


def _run_quiet(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def print_machine(info: dict[str, Any]) -> None:
    print("## Machine")
    print(f"- nproc: {info['nproc']}; CPU: {info['cpu']}; memory: {info['memory']}")
    print(f"- kernel {info['kernel']}; Python {info['python']}; SQLite {info['sqlite']}")
    for key in ("wrk", "postgresql", "smtp-sink"):
        if key in info:
            print(f"- {key}: {info[key]}")
    print("- " + ", ".join(f"{k} {v}" for k, v in info["libs"].items()))
    print()


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return f"python bench/{Path(sys.argv[0]).name}{(' ' + args) if args else ''}"


# --- numbers -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def verdict(value: float, target: float, *, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(cell: Any) -> str:
        if isinstance(cell, float):
            return f"{cell:,.2f}" if abs(cell) < 100 else f"{cell:,.0f}"
        if isinstance(cell, int):
            return f"{cell:,}"
        return str(cell)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
        print(f"(results written to {path})")


# --- processes and ports ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 10.0) -> None:
    """Stop a process this script started (by its own handle, never by name)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def require(tool: str, package: str) -> str:
    path = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None
    )
    if path is None:
        sys.exit(f"{tool} is not installed: apt-get install {package}")
    return path


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run the ``cartback`` command of this venv and return its stdout."""
    done = subprocess.run(
        [str(VENV_BIN / "cartback"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cartback {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


# --- PostgreSQL --------------------------------------------------------------------------


def pg_available() -> bool:
    return not tool_version("postgresql").startswith("unreachable")


@contextlib.contextmanager
def pg_database(prefix: str = "cb_bench") -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- wrk ---------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {"raw": out}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(m.group(1))
    for pct in ("50", "75", "90", "99"):
        if m := re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M):
            result[f"p{pct}"] = _ms(m.group(1))
    if m := re.search(r"(\d+) requests in", out):
        result["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return result


def run_wrk(
    url: str, script: Path, *, connections: int = 64, seconds: int = 10, threads: int = 1
) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    result = parse_wrk(done.stdout)
    result["command"] = " ".join(cmd)
    return result


# --- profiling -----------------------------------------------------------------------------


def py_spy_self(pyspy: str, out: str) -> subprocess.Popen[bytes]:
    """Start py-spy on this very process (all threads); stop it with :func:`py_spy_done`."""
    import signal  # noqa: F401

    proc = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(os.getpid()),
            "--format",
            "raw",
            "--rate",
            "250",
            "--nonblocking",
            "--output",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # attach before the measured phase starts
    return proc


def py_spy_done(proc: subprocess.Popen[bytes] | None) -> None:
    import signal

    if proc is None:
        return
    proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
