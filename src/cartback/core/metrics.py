"""Process-wide Prometheus counters. Gauges that live in the database are read at
scrape time by the API (see cartback.api.ops)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

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
WRITER_GROUP = Histogram(
    "cartback_writer_group_size",
    "Units of work committed together by the group-commit writer",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
