"""At most one message per (enrollment, step), even when a worker dies mid-send.

A worker records its intent (the message goes to ``sending`` and is committed), then
talks to the SMTP server. Here the server takes the message and never answers, and
the worker is SIGKILLed while it waits: nobody can know whether the email went out.
The next worker must mark the message ``unknown`` and never send it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from acceptance_harness import Cartback, HangingSmtp, hours_ago, wait_for
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cartback.flows.models import Enrollment
from cartback.flows.service import STEP_JOB, step_key
from cartback.messages.models import Message
from cartback.queue import Job
from support.factories import cart_updated
from support.smtp import SmtpSink

pytestmark = pytest.mark.slow


@pytest.fixture
def hanging_smtp() -> Iterator[HangingSmtp]:
    server = HangingSmtp()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_worker_killed_mid_send_leaves_the_message_unknown_and_it_is_never_resent(
    cartback: Cartback, hanging_smtp: HangingSmtp, smtp_sink: SmtpSink
) -> None:
    store = cartback.create_store("Acme Shoes", sender_email="hello@acme.test")
    server = cartback.serve("serve")
    doomed = cartback.spawn("worker", name="doomed-worker", smtp_url=hanging_smtp.url)
    engine = cartback.engine()

    def message() -> Message | None:
        with Session(engine) as session:
            return session.scalars(select(Message)).one_or_none()

    def step_jobs() -> list[Job]:
        with Session(engine) as session:
            query = select(Job).where(Job.store_id == store.id, Job.kind == STEP_JOB)
            return list(session.scalars(query))

    try:
        # Given a worker inside the send of the first reminder
        server.post_events(store, cart_updated(at=hours_ago(2)))
        sending = wait_for(
            lambda: (m := message()) is not None and m.status == "sending" and m,
            what="the message to be in 'sending'",
            alive=cartback.check_alive,
        )
        assert hanging_smtp.handler.data_started.wait(timeout=60)

        # When it is killed before the SMTP server answers
        doomed.kill()
        [job] = step_jobs()
        assert job.status == "running"  # claimed by the dead worker, its lease still on
        assert job.worker_id is not None
        with engine.connect() as connection:
            enrollment_id = connection.execute(select(Enrollment.id)).scalar_one()
        assert job.key == step_key(enrollment_id, 0)
        # The dead worker's lease would run out by itself after the lease (5 minutes);
        # moving the running job's run_at (its lease end) into the past stands in for
        # the clock passing that moment, instead of waiting for it.
        with engine.begin() as connection:
            moved = connection.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "running")
                .values(run_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert moved.rowcount == 1

        # And a new worker with a healthy SMTP server takes the job over
        cartback.spawn("worker", name="rescuer", smtp_url=smtp_sink.url)
        wait_for(
            lambda: all(j.key != job.key for j in step_jobs()),
            what="the interrupted step's job to be settled",
            alive=cartback.check_alive,
        )

        # Then the message is unknown, was not sent again, and the journey goes on
        after = message()
        assert after is not None
        assert after.id == sending.id
        assert after.status == "unknown"
        assert smtp_sink.received == []
        [next_job] = step_jobs()
        assert next_job.key == step_key(enrollment_id, 1)
        assert next_job.status == "pending"

        body = server.cart(store)
        assert [(m["step"], m["status"]) for m in body["messages"]] == [(0, "unknown")]
        kinds = [entry["kind"] for entry in body["timeline"]]
        assert kinds.count("message.unknown") == 1
        assert "message.sent" not in kinds
        assert body["journeys"][0]["status"] == "active"
        assert body["journeys"][0]["next_step"] == 1
        stats = server.stats(store)
        assert (stats["emails_unknown"], stats["emails_sent"]) == (1, 0)
    finally:
        engine.dispose()
