"""M9: the full send path vs raw aiosmtplib (baseline B4), both to ``smtp-sink`` on loopback.

Set-up (not timed): a fresh SQLite database (``--pg``: a fresh PostgreSQL database, dropped
afterwards), one store, N ``cart.updated`` events with a shopper email applied through the
service layer on a ManualClock, the clock moved past the abandonment delay and the worker
run until the abandonment jobs are done. That leaves N enrollments whose first step
(``reminder``, due 1 h after abandonment) is not due yet. Then:

- baseline B4: one message built in advance (cartback's own renderer + MIME writer, so the
  size is the same) sent N times with aiosmtplib over 8 persistent connections;
- cartback: the clock is moved 1 h on, so N ``flow.step`` jobs are due at once, and
  ``Runtime.worker()`` (the settings' batch size and concurrency, default 50 x 4) runs
  ``run_once`` until none is left: claim -> exit/policy checks -> render -> record intent
  (committed per round of up to 16 steps) -> SMTP (the round's sends at the same time on
  the worker's threads) -> mark sent -> schedule the next step.

Target: cartback >= 0.60x of the baseline's messages/s.

Run:  .venv/bin/python bench/send.py [-n 3000] [--pg] [--concurrency 4] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SENDER = "shop@example.com"
SETUP_EVENT = (
    '{"id":"e%d","type":"cart.updated","occurred_at":"%s","cart":{"id":"c%d",'
    '"currency":"USD","restore_url":"https://shop.example/cart/c%d","items":['
    '{"sku":"TEE-1","name":"Organic T-shirt","unit_price":1999,"quantity":2,'
    '"url":"https://shop.example/p/tee-1","image_url":"https://shop.example/i/t.jpg"},'
    '{"sku":"CAP-7","name":"Canvas cap","unit_price":1500,"quantity":1,'
    '"url":"https://shop.example/p/cap-7"}]},'
    '"contact":{"email":"shopper%d@example.com","first_name":"Ann"}}'
)


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = c.require("smtp-sink", "postfix")
    # -u: smtp-sink refuses to run as root without a user to drop to; 256: listen backlog
    proc = subprocess.Popen(
        [sink, "-u", "nobody", f"127.0.0.1:{port}", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    c.wait_port(port, 10, proc)
    return proc


async def _aiosmtp(port: int, message: bytes, to: str, n: int, connections: int) -> int:
    import aiosmtplib

    left = n
    sent = 0

    async def one() -> None:
        nonlocal left, sent
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await smtp.connect()
        try:
            while left > 0:
                left -= 1
                await smtp.sendmail(SENDER, [to], message)
                sent += 1
        finally:
            await smtp.quit()

    await asyncio.gather(*(one() for _ in range(connections)))
    return sent


def baseline(port: int, message: bytes, to: str, n: int, connections: int = 8) -> dict[str, Any]:
    start = time.perf_counter()
    sent = asyncio.run(_aiosmtp(port, message, to, n, connections))
    seconds = time.perf_counter() - start
    return {"sent": sent, "seconds": seconds, "rate": sent / seconds}


class Scene:
    """A cartback runtime with N carts whose first reminder becomes due in one clock move."""

    def __init__(self, url: str, smtp_port: int, n: int, workdir: Path, **worker: Any) -> None:
        from datetime import UTC, datetime

        from cartback.app import build_runtime
        from cartback.core.clock import ManualClock
        from cartback.settings import Settings

        self.n = n
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        self.t0 = self.clock.now()
        settings = Settings(
            database_url=url,
            smtp_url=f"smtp://127.0.0.1:{smtp_port}",  # type: ignore[arg-type]
            secret_key="bench-secret-key-not-for-production",  # type: ignore[arg-type]
            outbox_dir=str(workdir / "outbox"),
            base_url="https://recover.example.com",
        )
        self.runtime = build_runtime(settings, self.clock)
        self.worker_options = worker

    def prepare(self) -> dict[str, float]:
        """Ingest N carts, abandon them (worker), leave N step jobs one clock move away."""
        from cartback.core.db import transaction
        from cartback.ingest.api import parse_events
        from cartback.ingest.batch import IngestUnit, ingest_group
        from cartback.stores.schemas import StoreSettings
        from cartback.stores.service import create_store, store_settings

        timings = {}
        with transaction(self.runtime.sessions) as session:
            made = create_store(
                session,
                name="Bench Shop",
                now=self.clock.now(),
                settings=StoreSettings(
                    sender_email=SENDER,
                    url="https://shop.example",
                    address="1 Market St, Springfield",
                    support_email="help@shop.example",
                ),
            )
            store_id, settings = made.store.id, store_settings(made.store)
        t = time.perf_counter()
        at = self.t0.strftime("%Y-%m-%dT%H:%M:%SZ")
        for start in range(0, self.n, 200):
            events = []
            for i in range(start, min(start + 200, self.n)):
                events.append(SETUP_EVENT % (i, at, i, i, i))
            parsed = parse_events(("[" + ",".join(events) + "]").encode())
            with transaction(self.runtime.sessions) as session:
                unit = IngestUnit(store_id, settings, parsed, self.clock.now())
                ingest_group(session, [unit])
        timings["ingest_s"] = time.perf_counter() - t
        self.clock.advance(settings.abandon_delay + timedelta(minutes=1))
        t = time.perf_counter()
        timings["abandoned"] = self._drain()
        timings["abandon_s"] = time.perf_counter() - t
        return timings

    def _drain(self) -> int:
        done = 0
        with self.runtime.worker(**self.worker_options) as worker:
            while (handled := worker.run_once()) > 0:
                done += handled
        return done

    def sample_message(self) -> tuple[bytes, str]:
        """The bytes cartback would send for one of these carts (for the baseline)."""
        from cartback.channels.base import OutgoingEmail
        from cartback.channels.mime import build_mime
        from cartback.content import EmailContext, StoreInfo, build_items, format_money

        items = [
            {
                "sku": "TEE-1",
                "name": "Organic T-shirt",
                "unit_price": 1999,
                "quantity": 2,
                "url": "https://shop.example/p/tee-1",
                "image_url": "https://shop.example/i/t.jpg",
            },
            {
                "sku": "CAP-7",
                "name": "Canvas cap",
                "unit_price": 1500,
                "quantity": 1,
                "url": "https://shop.example/p/cap-7",
            },
        ]
        base = "https://recover.example.com"
        token = "x" * 60
        ctx = EmailContext(
            store=StoreInfo(
                "Bench Shop",
                "https://shop.example",
                "help@shop.example",
                "1 Market St, Springfield",
            ),
            first_name="Ann",
            locale="en",
            items=tuple(build_items(items, "USD", "en")),
            total=format_money(5498, "USD", "en"),
            item_count=3,
            restore_url=f"{base}/r/{token}",
            unsubscribe_url=f"{base}/u/{token}",
            open_pixel_url=f"{base}/o/{token}.gif",
            step_index=0,
        )
        rendered = self.runtime.renderer.render("reminder", ctx)
        email = OutgoingEmail(
            message_id="01JBENCHMARKMESSAGE0000000",
            from_address=SENDER,
            from_name="Bench Shop",
            to_address="shopper1@example.com",
            to_name="Ann",
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            headers=(
                ("List-Unsubscribe", f"<{base}/u/{token}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
            reply_to="help@shop.example",
        )
        return build_mime(email, date=self.clock.now()), email.to_address

    def send_due_steps(self) -> dict[str, Any]:
        """Move the clock so every first step is due; time the worker until none is left."""
        from sqlalchemy import func, select

        from cartback.messages.models import Message

        self.clock.advance(timedelta(hours=1, minutes=1))
        start = time.perf_counter()
        handled = self._drain()
        seconds = time.perf_counter() - start
        with self.runtime.sessions() as session:
            by_status = dict(
                session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
            )
        sent = int(by_status.get("sent", 0))
        return {
            "jobs": handled,
            "sent": sent,
            "by_status": by_status,
            "seconds": seconds,
            "rate": sent / seconds,
        }

    def close(self) -> None:
        self.runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="messages per contender")
    parser.add_argument("--pg", action="store_true", help="cartback on PostgreSQL, not SQLite")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, help="worker threads (default: settings, 4)")
    parser.add_argument("--batch", type=int, help="worker batch size (default: settings, 50)")
    parser.add_argument("--py-spy", metavar="PATH", help="py-spy binary: profile the send phase")
    parser.add_argument("--profile-out", default="send.pyspy.txt", help="collapsed stacks file")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    c.require("smtp-sink", "postfix")
    info = c.machine(["smtp-sink", "postgresql"] if args.pg else ["smtp-sink"])
    worker: dict[str, Any] = {}
    if args.concurrency:
        worker["concurrency"] = args.concurrency
    if args.batch:
        worker["batch_size"] = args.batch
    print("# Send benchmark (M9)")
    print(
        f"Command: `{c.command_line()}`; {args.n:,} messages each, Postfix smtp-sink on "
        f"127.0.0.1; baseline aiosmtplib x 8 connections\n"
    )
    c.print_machine(info)

    port = c.free_port()
    sink = start_sink(port)
    rows, results = [], {"machine": info, "command": c.command_line(), "runs": []}
    try:
        for rep in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="cartback-bench-send-") as tmp:
                workdir = Path(tmp)
                stack: list[Any] = []
                if args.pg:
                    cm = c.pg_database()
                    stack.append(cm)
                    url = cm.__enter__()
                else:
                    url = f"sqlite:///{workdir / 'send.db'}"
                try:
                    scene = Scene(url, port, args.n, workdir, **worker)
                    prep = scene.prepare()
                    message, to = scene.sample_message()
                    base = baseline(port, message, to, args.n)
                    spy = c.py_spy_self(args.py_spy, args.profile_out) if args.py_spy else None
                    mine = scene.send_due_steps()
                    c.py_spy_done(spy)
                    scene.close()
                finally:
                    for cm in stack:
                        cm.__exit__(None, None, None)
            rat = c.ratio(mine["rate"], base["rate"])
            print(
                f"  run {rep + 1}: set-up ingest {prep['ingest_s']:.1f}s, "
                f"{prep['abandoned']:,} abandonment jobs in {prep['abandon_s']:.1f}s; "
                f"message {len(message):,} B"
            )
            print(
                f"  run {rep + 1}: baseline {base['rate']:,.0f} msgs/s; cartback "
                f"{mine['rate']:,.0f} msgs/s ({mine['sent']:,} sent of {mine['jobs']:,} jobs, "
                f"statuses {mine['by_status']}); ratio {rat:.2f}"
            )
            results["runs"].append(
                {
                    "setup": prep,
                    "baseline": base,
                    "cartback": mine,
                    "ratio": rat,
                    "message_bytes": len(message),
                }
            )
    finally:
        c.stop(sink)

    runs = results["runs"]
    b = c.median([r["baseline"]["rate"] for r in runs])
    m = c.median([r["cartback"]["rate"] for r in runs])
    rat = c.median([r["ratio"] for r in runs])
    rows.append(["aiosmtplib x 8 (B4)", b, "-", "(baseline)"])
    rows.append(
        [
            f"cartback worker ({'PG' if args.pg else 'SQLite'})",
            m,
            rat,
            f">= 0.60: {c.verdict(rat, 0.60)}",
        ]
    )
    print("\n## M9: messages/s to smtp-sink\n")
    print(c.table(["sender", "msgs/s", "ratio", "target"], rows))
    c.write_json(args.json, results)


if __name__ == "__main__":
    main()
