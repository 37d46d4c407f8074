"""Process-wide Prometheus counters. Gauges that live in the database are read at
scrape time by the API (see cartback.api.ops)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_INGESTED = Counter(
    "cartback_events_ingested",
    "Events received, by type and result",
    ["type", "result"],
    registry=REGISTRY,
)
JOBS = Counter(
    "cartback_jobs",
    "Jobs handled by this process's workers, by outcome",
    ["kind", "outcome"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "cartback_messages",
    "Message status changes made by this process",
    ["channel", "status"],
    registry=REGISTRY,
)
