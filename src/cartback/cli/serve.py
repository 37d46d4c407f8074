"""Running the API and/or the worker until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import typer
import uvicorn

from cartback.app import Runtime, build_runtime, create_app, schedule_maintenance
from cartback.core.logging import configure_logging
from cartback.errors import ConfigError
from cartback.settings import Settings

log = logging.getLogger("cartback.cli")


def check_schema(settings: Settings) -> None:
    """Refuse to start on a database that `cartback db upgrade` has not brought to head.

    Runs before the runtime is built: building it already reads tables (the stored
    secret), and an unmigrated database must get this message, not "no such table".
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from cartback.core.db import make_engine
    from cartback.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if current != head:
        raise ConfigError(
            f"The database schema is at {current or 'nothing'}, this version needs {head}.\n"
            "Run `cartback db upgrade` first."
        )


def start_worker(runtime: Runtime, **options: Any) -> tuple[threading.Event, threading.Thread]:
    schedule_maintenance(runtime)
    stop = threading.Event()
    worker = runtime.worker(**options)
    thread = threading.Thread(target=worker.run, args=(stop,), name="cartback-worker", daemon=True)
    thread.start()
    return stop, thread


def serve_forever(settings: Settings, *, api: bool, worker: bool, migrate: bool) -> None:
    configure_logging(settings.log_level)
    if not migrate:
        check_schema(settings)
    runtime = build_runtime(settings, migrate=migrate)
    try:
        stop, thread = start_worker(runtime) if worker else (threading.Event(), None)
        if api:
            where = f"http://{settings.host}:{settings.port}"
            typer.echo(
                f"cartback listening on {where}  (API docs: {where}/docs"
                + (f", outbox: {where}/outbox" if settings.smtp_url is None else "")
                + ")"
            )
            app = create_app(runtime)
            uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
        else:
            typer.echo("cartback worker running; Ctrl-C to stop.")
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
        stop.set()
        if thread is not None:
            thread.join(timeout=30)
    finally:
        runtime.close()
