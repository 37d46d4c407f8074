"""Several worker processes on one PostgreSQL share the due work without doing any of it
twice: 40 abandoned carts x 3 steps = exactly 120 emails, each exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from acceptance_harness import Cartback, hours_ago, wait_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cartback.flows.service import STEP_JOB
from cartback.messages.models import Message
from cartback.queue import Job
from support.databases import backend
from support.factories import cart_updated, item
from support.smtp import SmtpSink

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        backend() != "postgresql",
        reason="many workers coordinate through PostgreSQL (SKIP LOCKED); "
        "SQLite runs one process (set CARTBACK_TEST_DB=postgresql)",
    ),
]

WORKERS = 3
CARTS = 40
STEPS = 3
BATCH = 10  # carts per POST /v1/events

# All three steps are due as soon as the cart is abandoned (backdated carts).
FLOW = """\
name: Fast three
steps:
  - after: 1s
    template: reminder
  - after: 2s
    template: help
  - after: 3s
    template: last_chance
"""


@pytest.fixture
def sinks() -> Iterator[list[SmtpSink]]:
    """One SMTP server per worker process, so each email shows which worker sent it."""
    started = [SmtpSink() for _ in range(WORKERS)]
    for sink in started:
        sink.start()
    try:
        yield started
    finally:
        for sink in started:
            sink.stop()


def test_three_workers_send_every_step_of_forty_carts_exactly_once(
    cartback: Cartback, sinks: list[SmtpSink], tmp_path: Path
) -> None:
    store = cartback.create_store("Acme Shoes", sender_email="hello@acme.test")
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    cartback.run("flow", "set", store.id, str(flow))
    # every step is due at once here: lift the one-message-per-16-hours budget
    policy = tmp_path / "store.yaml"
    policy.write_text("policy: {min_gap: 0s}\n")
    cartback.run("store", "configure", store.id, str(policy))
    server = cartback.serve("serve")
    for index, sink in enumerate(sinks):
        # A small claim batch keeps one worker from taking every due job in one go,
        # so the run shows sharing rather than one worker winning the first poll.
        cartback.spawn(
            "worker",
            name=f"worker-{index}",
            smtp_url=sink.url,
            base_url=server.base_url,
            worker_batch="5",
        )

    shoppers = [f"shopper{n:02d}@example.com" for n in range(CARTS)]
    for start in range(0, CARTS, BATCH):
        events = [
            cart_updated(
                f"cart-{n:02d}",
                at=hours_ago(2),
                email=shoppers[n],
                first_name=f"Shopper{n:02d}",
                items=[item(f"SKU-{n:02d}", price=1000 + n)],
            )
            for n in range(start, start + BATCH)
        ]
        assert server.post_events(store, *events)["accepted"] == BATCH

    def received() -> list[tuple[int, str, str]]:
        return [
            (index, m["To"].addresses[0].addr_spec, str(m["Subject"]))
            for index, sink in enumerate(sinks)
            for m in sink.received
        ]

    wait_for(
        lambda: len(received()) >= CARTS * STEPS,
        what=f"{CARTS * STEPS} emails across the sinks",
        timeout=90,
        alive=cartback.check_alive,
    )
    engine = cartback.engine()
    try:

        def step_jobs_left() -> int:
            with Session(engine) as session:
                return (
                    session.scalar(
                        select(func.count()).select_from(Job).where(Job.kind == STEP_JOB)
                    )
                    or 0
                )

        # the last sends commit just after the sink has the email
        wait_for(
            lambda: step_jobs_left() == 0,
            what="every flow.step job to be done",
            alive=cartback.check_alive,
        )
        with Session(engine) as session:
            rows = session.execute(
                select(Message.enrollment_id, Message.step_index, Message.status)
            ).all()
            failed_jobs = session.scalars(select(Job).where(Job.status == "failed")).all()
    finally:
        engine.dispose()

    emails = received()
    assert len(emails) == CARTS * STEPS
    pairs = Counter((to, subject) for _, to, subject in emails)
    assert len(pairs) == CARTS * STEPS, [p for p, n in pairs.items() if n > 1]
    assert Counter(to for _, to, _ in emails) == {address: STEPS for address in shoppers}
    assert len(rows) == CARTS * STEPS
    assert Counter(status for _, _, status in rows) == {"sent": CARTS * STEPS}
    assert len({(enrollment, step) for enrollment, step, _ in rows}) == CARTS * STEPS
    assert Counter(step for _, step, _ in rows) == {0: CARTS, 1: CARTS, 2: CARTS}
    assert failed_jobs == []
    # the work was spread: each worker sends through its own SMTP server
    per_worker = Counter(index for index, _, _ in emails)
    assert len(per_worker) > 1, f"one worker did all the work: {per_worker}"
    # and every worker logged under its own id
    ids = {
        line["worker_id"]
        for proc in cartback.procs
        if proc.name.startswith("worker-")
        for line in proc.log_lines()
        if line.get("event") == "worker.started"
    }
    assert len(ids) == WORKERS
