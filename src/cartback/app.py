"""The composition root: settings + clock in, a wired runtime and ASGI app out."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cartback import migrations
from cartback.api.app import build_api
from cartback.carts import jobs as cart_jobs
from cartback.channels import OutboxChannel
from cartback.channels.breaker import CircuitBreaker
from cartback.collect import jobs as collect_jobs
from cartback.content import EmailRenderer, ShortRenderer
from cartback.core.clock import Clock, SystemClock
from cartback.core.db import make_engine, make_sessionmaker, transaction
from cartback.core.metrics import JOBS
from cartback.core.services import Services
from cartback.core.signing import Signer
from cartback.core.writer import GroupCommitWriter
from cartback.flows import jobs as flow_jobs
from cartback.ingest import jobs as ingest_jobs
from cartback.messages.compose import Composer, Links
from cartback.providers import Providers
from cartback.queue import Registry, Worker, WorkerStats
from cartback.settings import Settings
from cartback.stores.service import instance_secret

log = logging.getLogger("cartback.app")


@dataclass
class Runtime:
    """Everything a process needs, built once from settings and passed down."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    signer: Signer
    renderer: EmailRenderer
    registry: Registry
    outbox: OutboxChannel | None
    breaker: CircuitBreaker
    providers: Providers
    _writer: GroupCommitWriter | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def writer(self) -> GroupCommitWriter:
        with self._lock:
            if self._writer is None:
                self._writer = GroupCommitWriter(self.sessions)
            return self._writer

    def worker(self, **overrides: Any) -> Worker:
        options: dict[str, Any] = {
            "batch_size": self.settings.worker_batch,
            "concurrency": self.settings.worker_concurrency,
            "poll_interval": self.settings.poll_interval,
        }
        options.update(overrides)
        options.setdefault("stats", _CountingStats())
        return Worker(self.sessions, self.registry, self.clock, **options)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        self.providers.close()
        self.engine.dispose()
        bind = self.readers.kw.get("bind")
        if bind is not None:
            bind.dispose()


class _CountingStats(WorkerStats):
    """Worker counters, also exported to Prometheus."""

    def observe(self, *, kind: str, outcome: Any, seconds: float) -> None:
        super().observe(kind=kind, outcome=outcome, seconds=seconds)
        JOBS.labels(kind, str(outcome)).inc()


def build_runtime(
    settings: Settings, clock: Clock | None = None, *, migrate: bool = True
) -> Runtime:
    clock = clock or SystemClock()
    if migrate:
        migrations.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    secret = (
        settings.secret_key.get_secret_value() if settings.secret_key else _stored_secret(sessions)
    )
    signer = Signer(secret)
    outbox = OutboxChannel(directory=Path(settings.outbox_dir), clock=clock)
    breaker = CircuitBreaker(clock)
    providers = Providers(
        clock=clock,
        breaker=breaker,
        outbox=outbox,
        instance_smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
        pool_size=settings.worker_concurrency,
    )
    runtime = Runtime(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        readers=make_sessionmaker(make_engine(settings.database_url, read_only=True)),
        signer=signer,
        renderer=EmailRenderer(),
        registry=Registry(),
        outbox=outbox,
        breaker=breaker,
        providers=providers,
    )
    flow_jobs.register(
        runtime.registry,
        flow_jobs.JourneyDeps(
            clock=clock,
            composer=Composer(
                renderer=runtime.renderer,
                short=ShortRenderer(),
                links=Links(settings.base_url, signer),
                senders=providers,
            ),
            team_alert=providers.team_alert,
        ),
    )
    cart_jobs.register(
        runtime.registry, clock, expiry=settings.cart_expiry, on_expired=flow_jobs.end_expired
    )
    ingest_jobs.register(runtime.registry, clock, retention=settings.event_retention)
    collect_jobs.register(
        runtime.registry, collect_jobs.CollectDeps(clock, runtime.renderer, providers)
    )
    # Maintenance only writes in its session: it may share a claim's transaction.
    runtime.registry.mark_batched(cart_jobs.EXPIRE_JOB)
    runtime.registry.mark_batched(ingest_jobs.PRUNE_JOB)
    return runtime


def _stored_secret(sessions: sessionmaker[Session]) -> str:
    for _ in range(3):  # two processes starting at once: one insert wins, the other reads it
        try:
            with transaction(sessions) as session:
                return instance_secret(session)
        except IntegrityError:
            continue
    raise RuntimeError("could not read or create the instance secret")


def create_app(runtime: Runtime) -> FastAPI:
    services = Services(
        sessions=runtime.sessions,
        readers=runtime.readers,
        clock=runtime.clock,
        writer=runtime.writer,
        signer=runtime.signer,
        base_url=runtime.settings.base_url,
        outbox=runtime.outbox if runtime.settings.smtp_url is None else None,
    )
    return build_api(services)


def schedule_maintenance(runtime: Runtime) -> None:
    """Make sure the periodic jobs exist (idempotent; every worker calls it on start)."""
    with transaction(runtime.sessions) as session:
        cart_jobs.schedule(session, runtime.clock)
        ingest_jobs.schedule(session, runtime.clock)
