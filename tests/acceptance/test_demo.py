"""``cartback demo`` end to end: the real CLI as a subprocess, shoppers over HTTP, the real
worker and outbox, and a summary whose numbers are cartback's own."""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).with_name("cartback")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def summary_number(output: str, label: str) -> int:
    found = re.search(rf"^  {label}\s+(\d+)\b", output, re.MULTILINE)
    assert found, f"no {label!r} line in the summary:\n{output}"
    return int(found.group(1))


def run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
    return subprocess.run(
        [str(CLI), "demo", *args],
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def test_demo_runs_the_whole_loop_and_reports_what_cartback_counted(tmp_path: Path) -> None:
    # given a stale demo database and outbox from an earlier run
    port = free_port()
    database = tmp_path / "demo.db"
    outbox = tmp_path / "demo-outbox"
    database.write_bytes(b"")
    outbox.mkdir()
    (outbox / "stale.eml").write_bytes(b"Subject: from an earlier demo\r\n\r\nold\r\n")

    # when the demo runs on a very fast clock and exits after its summary
    done = run_demo(
        tmp_path,
        "--exit",
        "--shoppers", "12",
        "--speed", "20000",
        "--port", str(port),
        "--database", str(database),
    )  # fmt: skip

    # then it succeeded and pointed at the outbox
    output = done.stdout
    assert done.returncode == 0, f"stdout:\n{output}\nstderr:\n{done.stderr}"
    assert f"http://127.0.0.1:{port}/outbox" in output

    # and the summary's numbers are real and consistent with each other
    created = summary_number(output, "Carts created")
    bought = summary_number(output, "Bought right away")
    abandoned = summary_number(output, "Abandoned")
    recovered = summary_number(output, "Recovered")
    sent = summary_number(output, "Emails sent")
    opened = summary_number(output, "Emails opened")
    clicked = summary_number(output, "Emails clicked")
    assert created == 12
    assert abandoned > 0 and recovered > 0 and sent > 0
    assert recovered <= abandoned
    assert bought + abandoned <= created
    assert sent >= abandoned  # every abandoned cart got at least its first reminder
    assert clicked >= recovered  # the simulated shoppers come back through the link
    assert opened >= clicked
    assert re.search(r"Recovered revenue\s+€[\d,]+\.\d\d\s+\((\d+) orders\)", output)
    assert "Traceback" not in done.stderr

    # and every email sent is on disk, and the stale one is gone
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == sent
    assert not (outbox / "stale.eml").exists()
    first = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert first["To"].addresses[0].domain == "example.com"
    assert "Demo Outfitters" in str(first["From"])


def test_demo_leaves_a_file_that_is_not_a_demo_database_alone(tmp_path: Path) -> None:
    # given a file at --database that is not a demo's
    precious = tmp_path / "shop.db"
    precious.write_bytes(b"not a database, and not the demo's")

    # when the demo is pointed at it
    done = run_demo(tmp_path, "--exit", "--port", str(free_port()), "--database", str(precious))

    # then it refuses, says why, and the file is untouched
    assert done.returncode != 0
    assert "not a cartback demo database" in done.stderr
    assert precious.read_bytes() == b"not a database, and not the demo's"
    assert not (tmp_path / "shop-outbox").exists()
