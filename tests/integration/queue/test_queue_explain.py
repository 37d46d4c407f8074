"""The claim and the metrics reads use the partial index ix_jobs_due, not a full scan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from queue_factories import START, STORE
from sqlalchemy import insert, text
from sqlalchemy.orm import Session, sessionmaker

from cartback.core.db import is_sqlite, transaction
from cartback.queue import Job, JobStatus
from cartback.queue.queries import explain


@pytest.fixture
def many_jobs(sessions: sessionmaker[Session]) -> None:
    """5,000 jobs, mostly not due or failed, so a planner has a reason to choose."""
    rows: list[dict[str, object]] = [
        {
            "store_id": STORE,
            "kind": "test.job",
            "key": f"job:{n}",
            "payload": {},
            "status": JobStatus.FAILED.value if n % 5 == 0 else JobStatus.PENDING.value,
            "run_at": START + timedelta(minutes=n - 50),
            "attempts": 0,
            "max_attempts": 10,
            "created_at": START,
        }
        for n in range(5_000)
    ]
    with transaction(sessions) as session:
        session.execute(insert(Job), rows)
    with transaction(sessions) as session:
        session.execute(text("ANALYZE"))


@pytest.mark.parametrize("statement", ["claim", "due_count", "oldest_due"])
@pytest.mark.usefixtures("many_jobs")
def test_reads_of_due_jobs_use_the_partial_index(
    sessions: sessionmaker[Session], statement: str
) -> None:
    with sessions() as session:
        plan = explain(session, statement, now=START, limit=50)
        sqlite = is_sqlite(session)

    joined = "\n".join(plan)
    if sqlite:
        assert "USING INDEX ix_jobs_due" in joined or "USING COVERING INDEX ix_jobs_due" in joined
        assert not any(line.startswith("SCAN jobs") for line in plan), joined
    else:
        assert "using ix_jobs_due on jobs" in joined, joined
        assert "Seq Scan" not in joined, joined
