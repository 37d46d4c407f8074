"""Operators' endpoints: /healthz (the process is up), /readyz (the database answers),
/metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from cartback.core.metrics import REGISTRY
from cartback.core.services import Services, services
from cartback.messages.models import Message
from cartback.queue import due_count, oldest_due

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> Response:
    try:
        with services(request).readers() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
    return JSONResponse({"status": "ready"})


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, each by an index."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.svc.clock.now()
        with self.svc.readers() as session:
            due = due_count(session, now=now)
            oldest = oldest_due(session, now=now)
            rows = session.execute(
                select(Message.channel, Message.status, func.count())
                .where(Message.created_at >= now - timedelta(hours=24))
                .group_by(Message.channel, Message.status)
            ).all()
        yield GaugeMetricFamily("cartback_jobs_due", "Jobs due now and not yet done", value=due)
        yield GaugeMetricFamily(
            "cartback_jobs_lag_seconds",
            "How long the oldest due job has waited",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        family = GaugeMetricFamily(
            "cartback_messages_24h",
            "Messages created in the last 24 hours by channel and status",
            labels=["channel", "status"],
        )
        for channel, status, count in rows:
            family.add_metric([channel, status], count)
        yield family


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(services(request)))
    body = generate_latest(REGISTRY) + generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
