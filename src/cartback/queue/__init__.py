"""Durable due work in the application's own database.

Domain code schedules with :func:`enqueue` (in its own transaction), registers
a handler per job kind in a :class:`Registry`, and the app runs a
:class:`Worker`. The job states and their transitions are drawn in
``cartback.queue.models``; docs/job-lifecycle.md tells the same story.
"""

from cartback.queue.handlers import ClaimedJob, Deliver, Delivered, Handler, Registry, Reschedule
from cartback.queue.models import Job, JobStatus
from cartback.queue.service import (
    NewJob,
    cancel,
    due_count,
    enqueue,
    enqueue_many,
    oldest_due,
    prune_failed,
)
from cartback.queue.worker import Worker, WorkerStats

__all__ = [
    "ClaimedJob",
    "Deliver",
    "Delivered",
    "Handler",
    "Job",
    "JobStatus",
    "NewJob",
    "Registry",
    "Reschedule",
    "Worker",
    "WorkerStats",
    "cancel",
    "due_count",
    "enqueue",
    "enqueue_many",
    "oldest_due",
    "prune_failed",
]
