"""``cartback demo``: the whole loop in about a minute.

A fresh SQLite file and outbox, a demo store with the built-in journey, the real API on
127.0.0.1 (uvicorn in a thread), the real worker (a thread) and simulated shoppers who talk
to the API over HTTP, all on one :class:`DemoClock` running ``speed`` times faster than
real time. The summary is cartback's own stats for the demo's period.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import FrameType

import httpx
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cartback.analytics.service import stats
from cartback.app import Runtime, build_runtime, schedule_maintenance
from cartback.carts.models import Cart, CartStatus
from cartback.core.db import transaction
from cartback.core.durations import parse_duration
from cartback.core.logging import configure_logging
from cartback.demo import report
from cartback.demo.catalogue import CURRENCY, LOCALE, STORE_NAME, store_url
from cartback.demo.clock import DemoClock
from cartback.demo.errors import DemoError
from cartback.demo.simulator import Reaction, Simulator, make_shoppers
from cartback.demo.store import create_demo_store, demo_app
from cartback.flows.service import current_flow, definition_of
from cartback.queue import oldest_due
from cartback.settings import Settings, load_settings
from cartback.stores.service import get_store, store_settings

HOST = "127.0.0.1"
# The last reminder goes 72 h after a cart is abandoned (30 min idle); 80 h after the last
# shopper arrives leaves room for it and for the shoppers who change their cart first.
RUN_AFTER_LAST_ARRIVAL = timedelta(hours=80)
PROGRESS_EVERY = timedelta(hours=6)
TICK_SECONDS = 0.02  # real seconds between simulator steps
LIVE_SECONDS = 0.25  # real seconds between refreshes of the live line on a terminal
WORKER_POLL_SECONDS = 0.05
# A job still due after this many real seconds no longer holds the clock (it may be
# failing and retrying); the demo goes on without it.
STUCK_SECONDS = 5.0
# After the summary a person may play the shopper in the demo store: at 60x an abandoned
# cart's first reminder (30 min idle, then 1 h) lands in the outbox 90 s after they leave.
PLAY_SPEED = 60.0


class QueueWatch:
    """Holds the clock at the queue's next job, so every reminder goes out at its
    simulated time however busy the machine is."""

    def __init__(self, reads: sessionmaker[Session], clock: DemoClock) -> None:
        self._reads = reads
        self._clock = clock
        self._next: datetime | None = None
        self._since = time.monotonic()

    def update(self) -> None:
        with self._reads() as session:
            upcoming = oldest_due(session, now=self._clock.now() + timedelta(days=3650))
        if upcoming != self._next:
            self._next, self._since = upcoming, time.monotonic()
        stuck = time.monotonic() - self._since > STUCK_SECONDS
        self._clock.hold("worker", None if stuck else upcoming)


@dataclass(frozen=True)
class DemoPaths:
    database: Path
    outbox: Path

    @classmethod
    def beside(cls, database: Path) -> DemoPaths:
        """``cartback-demo.db`` keeps its email in ``cartback-demo-outbox/``."""
        return cls(database, database.with_name(f"{database.stem}-outbox"))


def run_demo(
    *,
    port: int,
    shoppers: int,
    speed: float,
    database: Path,
    keep_serving: bool,
    seed: int = 7,
) -> None:
    """Run the demo, print its summary, then serve the outbox until Ctrl-C
    (or return at once when ``keep_serving`` is false)."""
    console = report.Console()
    with contextlib.suppress(AttributeError):  # a replaced stdout may not have it
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    configure_logging("WARNING")
    paths = DemoPaths.beside(database)
    listener = _listen(port)  # before deleting anything: a busy port leaves the last demo be
    with listener, _sigterm_as_interrupt():
        _reset(paths)
        _Demo(console, paths, listener, shoppers=shoppers, speed=speed, seed=seed).run(
            keep_serving=keep_serving
        )


class _Demo:
    def __init__(
        self,
        console: report.Console,
        paths: DemoPaths,
        listener: socket.socket,
        *,
        shoppers: int,
        speed: float,
        seed: int,
    ) -> None:
        self.console = console
        self.paths = paths
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.base_url = f"http://{HOST}:{self.port}"
        self.shopper_count = shoppers
        self.speed = speed
        self.seed = seed
        self.clock = DemoClock(speed, start=datetime.now(UTC))
        self.sim_start = self.clock.started_at
        self._last_counts: report.Counts | None = None
        self._quiet = False
        self._quiet_explained = "quiet"
        self._first_reminder = timedelta(0)  # from abandonment, set in _create_store
        self.reads: sessionmaker[Session]  # plain read sessions, made in run()

    def run(self, *, keep_serving: bool) -> None:
        settings = self._settings()
        runtime = build_runtime(settings, self.clock)
        self.reads = runtime.readers  # never wait for the writer
        stop_worker = threading.Event()
        server: uvicorn.Server | None = None
        try:
            store_id, api_key, journey = self._create_store(runtime)
            server = self._serve(runtime, store_id)
            worker = self._start_worker(runtime, stop_worker)
            self._banner(journey)
            with httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=30,
            ) as client:
                started = time.monotonic()
                came_back = self._simulate(runtime, client, store_id)
                real_seconds = time.monotonic() - started
            self.clock.freeze()  # the story is over: nothing moves any more
            stop_worker.set()
            worker.join(timeout=30)
            self._summary(runtime, store_id, real_seconds, came_back)
            self._next_steps(runtime, store_id, api_key, keep_serving)
            if keep_serving:
                # a person may play the shopper now: time and the worker run on for them
                self.clock.play(PLAY_SPEED)
                stop_worker = threading.Event()
                self._start_worker(runtime, stop_worker)
                with contextlib.suppress(KeyboardInterrupt):
                    while not server.should_exit:
                        time.sleep(0.5)
                self.console.line("\nStopped.")
        except KeyboardInterrupt:
            self.console.line(
                f"\nStopped. What happened so far is in {self.paths.database} "
                f"and {self.paths.outbox}/."
            )
            raise
        finally:
            stop_worker.set()
            if server is not None:
                server.should_exit = True
            runtime.close()

    # -- setting up ---------------------------------------------------------------------

    def _settings(self) -> Settings:
        settings = load_settings(
            database_url=f"sqlite:///{self.paths.database.resolve()}",
            outbox_dir=str(self.paths.outbox),
            base_url=self.base_url,
            host=HOST,
            port=self.port,
        )
        # The demo never emails anyone, whatever CARTBACK_SMTP_URL says.
        return settings.model_copy(update={"smtp_url": None})

    def _create_store(self, runtime: Runtime) -> tuple[str, str, str]:
        with transaction(runtime.sessions) as session:
            made = create_demo_store(session, now=self.clock.now(), base_url=self.base_url)
            flow = current_flow(session, store_id=made.store.id, now=self.clock.now())
            steps = definition_of(flow).steps
            journey = ", ".join(
                f"{'/'.join(step.channel_order)} after {step.after}" for step in steps
            )
            offsets = ", ".join(step.after for step in steps)
            if steps:
                self._first_reminder = parse_duration(steps[0].after)
            self._quiet_explained = f"quiet: reminders go {offsets} after a cart is abandoned"
            return made.store.id, made.api_key, journey

    def _serve(self, runtime: Runtime, store_id: str) -> uvicorn.Server:
        config = uvicorn.Config(
            demo_app(runtime, store_id), log_level="warning", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self.listener]}, name="demo-api", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DemoError(f"The demo's web server did not start on {self.base_url}")
            time.sleep(0.02)
        return server

    def _start_worker(self, runtime: Runtime, stop: threading.Event) -> threading.Thread:
        schedule_maintenance(runtime)
        worker = runtime.worker(poll_interval=WORKER_POLL_SECONDS)
        thread = threading.Thread(target=worker.run, args=(stop,), name="demo-worker", daemon=True)
        thread.start()
        return thread

    # -- the story ----------------------------------------------------------------------

    def _banner(self, journey: str) -> None:
        outbox_url = f"{self.base_url}/outbox"
        hour = 3600 / self.speed
        line = self.console.line
        line("cartback demo: abandoned carts, reminders and recoveries, on a fast clock")
        line("")
        line(f"  >>> Watch the reminder emails arrive:  {outbox_url}")
        line("")
        line(f'  Store     "{STORE_NAME}" ({CURRENCY}, {store_url(self.base_url)})')
        line(f"  Journey   built-in: a cart is abandoned after 30 min idle; {journey}")
        line(
            f"  Shoppers  {self.shopper_count}, arriving over the first 8 hours "
            f"(seed {self.seed}), sending events to {self.base_url}/v1/events"
        )
        line(
            f"  Clock     {self.speed:g}x: 1 simulated hour = {hour:.2g} s; "
            f"about {self._real_duration():.0f} s in all"
        )
        line(f"  Files     {self.paths.database}, emails in {self.paths.outbox}/")
        line("")
        line("  Simulated time, and what cartback sees (emails = reminders sent):")

    def _real_duration(self) -> float:
        last = max(
            (s.arrives for s in make_shoppers(self.shopper_count, self._rng())),
            default=timedelta(0),
        )
        return self.clock.real_seconds(last + RUN_AFTER_LAST_ARRIVAL)

    def _rng(self) -> random.Random:
        return random.Random(self.seed)

    def _simulate(
        self, runtime: Runtime, client: httpx.Client, store_id: str
    ) -> dict[Reaction, int]:
        rng = self._rng()
        assert runtime.outbox is not None
        simulator = Simulator(
            make_shoppers(self.shopper_count, rng),
            client=client,
            clock=self.clock,
            outbox=runtime.outbox,
            base_url=self.base_url,
            rng=rng,
            say=lambda at, text: self.console.line(f"  {self._elapsed(at)}  >> {text}"),
        )
        self.sim_start = simulator.start
        end = simulator.start + simulator.last_arrival + RUN_AFTER_LAST_ARRIVAL
        finished = threading.Event()
        # Progress lines are steps too: the clock waits while they count.
        mark = simulator.start + PROGRESS_EVERY
        while mark < end:
            simulator.at(mark, partial(self._progress, store_id, mark))
            mark += PROGRESS_EVERY
        simulator.at(end, finished.set)
        live_at = 0.0
        queue = QueueWatch(self.reads, self.clock)
        while not finished.is_set():
            queue.update()
            simulator.tick()
            if self.console.live and time.monotonic() >= live_at:
                line = report.progress_line(self._counts(store_id))
                self.console.status(f"  {self._elapsed(self.clock.now())}  {line}")
                live_at = time.monotonic() + LIVE_SECONDS
            time.sleep(self._pause(simulator.next_due()))
        self.console.line(f"  {self._elapsed(end)}  the last reminders are out.")
        return simulator.came_back

    def _pause(self, next_due: datetime | None) -> float:
        """Real seconds to sleep: until the next step, at most one tick."""
        if next_due is None:
            return TICK_SECONDS
        return min(max(self.clock.real_seconds(next_due - self.clock.now()), 0.0), TICK_SECONDS)

    def _elapsed(self, moment: datetime) -> str:
        return report.elapsed(self.sim_start, moment)

    def _progress(self, store_id: str, mark: datetime) -> None:
        counts = self._counts(store_id)
        if counts == self._last_counts:
            text = "quiet" if self._quiet else self._quiet_explained
            self._quiet = True
        else:
            text, self._quiet = report.progress_line(counts), False
        self._last_counts = counts
        self.console.line(f"  {self._elapsed(mark)}  {text}")

    def _counts(self, store_id: str) -> report.Counts:
        with self.reads() as session:
            return report.live_counts(session, store_id)

    # -- the end ------------------------------------------------------------------------

    def _summary(
        self, runtime: Runtime, store_id: str, real_seconds: float, came_back: dict[Reaction, int]
    ) -> None:
        start, end = self.clock.started_at, self.clock.now() + timedelta(seconds=1)
        with runtime.sessions() as session:
            numbers = stats(session, store_id=store_id, start=start, end=end)
            created = report.carts_created(session, store_id, start, end)
            purchased = report.live_counts(session, store_id).purchased
        summary = report.Summary(
            hours=(end - self.sim_start) / timedelta(hours=1),
            real_seconds=real_seconds,
            created=created,
            purchased=purchased,
            stats=numbers,
            currency=CURRENCY,
            locale=LOCALE,
        )
        self.console.line("")
        for text in report.summary_lines(summary, char=self.console.bar_char):
            self.console.line(text)
        self.console.line("")
        self.console.line(
            "  These are cartback's own numbers (the same as GET /v1/stats). Cross-check: "
            f"{came_back[Reaction.BUY]} simulated"
        )
        self.console.line(
            "  shoppers clicked a reminder and bought; cartback counted "
            f"{numbers.carts_recovered} recovered carts."
        )

    def _next_steps(
        self, runtime: Runtime, store_id: str, api_key: str, keep_serving: bool
    ) -> None:
        line = self.console.line
        auth = f'-H "Authorization: Bearer {api_key}"'
        line("")
        if not keep_serving:
            line(
                f"Outbox: {self.base_url}/outbox (run `cartback demo` without --exit to browse it"
                " and to play the shopper in the demo store)"
            )
            line(f"The emails are kept as .eml files in {self.paths.outbox}/")
            return
        with runtime.sessions() as session:
            recovered = session.execute(
                select(Cart.external_id)
                .where(Cart.store_id == store_id, Cart.status == CartStatus.RECOVERED)
                .order_by(Cart.external_id)
                .limit(1)
            ).scalar_one_or_none()
        line("Look around; the server keeps running:")
        line(f"  Play the shopper:    {store_url(self.base_url)}")
        line(f"  The emails:          {self.base_url}/outbox")
        line(f"                       (and as .eml files in {self.paths.outbox}/)")
        if recovered is not None:
            line(f"  A recovered cart:    curl -s {auth} {self.base_url}/v1/carts/{recovered}")
        line(f"  The stats as JSON:   curl -s {auth} {self.base_url}/v1/stats")
        line(f"  API docs:            {self.base_url}/docs")
        wait = self._abandon_after(runtime, store_id) + self._first_reminder
        line("")
        line("Play the shopper: in the demo store, add something to your cart, enter your email")
        line("at checkout and tick the box (or give it to the prompt that opens when you leave")
        line(f"the page), then leave. The clock runs at {PLAY_SPEED:g}x from now on: the first")
        line(
            f"reminder lands in the outbox about {wait.total_seconds() / PLAY_SPEED:.0f} s "
            "later, and its link restores your cart."
        )
        line("Press Ctrl-C to stop.")

    def _abandon_after(self, runtime: Runtime, store_id: str) -> timedelta:
        with runtime.sessions() as session:
            return store_settings(get_store(session, store_id)).abandon_delay


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((HOST, port))
    except OSError as exc:
        listener.close()
        raise DemoError(
            f"Cannot listen on {HOST}:{port} ({exc.strerror}). "
            f"Is another cartback running? Try `cartback demo --port {port + 1}`."
        ) from None
    listener.listen(128)
    return listener


def _reset(paths: DemoPaths) -> None:
    """Delete the last demo's database and outbox, and nothing that is not a demo's."""
    if paths.database.exists() and not _is_demo_database(paths.database):
        raise DemoError(
            f"{paths.database} exists and is not a cartback demo database; "
            "it is left alone. Pick another file with --database."
        )
    if paths.outbox.exists() and not _is_outbox(paths.outbox):
        raise DemoError(
            f"{paths.outbox} holds files other than emails; it is left alone. "
            "Pick another file with --database (the outbox sits beside it)."
        )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{paths.database}{suffix}").unlink(missing_ok=True)
    if paths.outbox.exists():
        shutil.rmtree(paths.outbox)
    paths.database.parent.mkdir(parents=True, exist_ok=True)


def _is_demo_database(path: Path) -> bool:
    if path.is_file() and path.stat().st_size == 0:
        return True
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = connection.execute(
                "SELECT count(*) FROM stores WHERE name != ?", (STORE_NAME,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return bool(row == (0,))


def _is_outbox(path: Path) -> bool:
    return path.is_dir() and all(p.is_file() and p.suffix == ".eml" for p in path.iterdir())


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo the way Ctrl-C does (threads stop, files stay whole)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
