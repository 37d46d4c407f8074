"""The group-commit writer: one commit for many units, each unit's failure its own, and a
deadlock answered by running the whole group again."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from cartback.app import Runtime
from cartback.core.writer import GroupCommitWriter
from cartback.stores.models import InstanceSetting


class _Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg reports for PostgreSQL's deadlock_detected


def keys(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return sorted(session.execute(select(InstanceSetting.key)).scalars())


def put(key: str) -> object:
    def unit(session: Session) -> str:
        session.add(InstanceSetting(key=key, value="v"))
        session.flush()
        return key

    return unit


def test_units_commit_together_and_a_failing_unit_fails_alone(runtime: Runtime) -> None:
    gate = threading.Event()
    writer = GroupCommitWriter(runtime.sessions)
    try:
        blocker = writer.submit(lambda session: gate.wait(5))  # holds the writer
        futures: list[Future[object]] = [writer.submit(put(k)) for k in ("a", "b", "a")]
        gate.set()
        blocker.result(5)
        assert [f.result(5) for f in futures[:2]] == ["a", "b"]
        with pytest.raises(IntegrityError):
            futures[2].result(5)  # "a" again: only this unit is refused
    finally:
        writer.stop()
    assert keys(runtime) == ["a", "b"]


def test_a_deadlock_runs_the_whole_group_again_and_commits_once(runtime: Runtime) -> None:
    calls = {"flaky": 0}

    def flaky(session: Session) -> str:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise OperationalError("UPDATE carts ...", {}, _Deadlock())
        return "ok"

    gate = threading.Event()
    writer = GroupCommitWriter(runtime.sessions)
    try:
        blocker = writer.submit(lambda session: gate.wait(5))
        first = writer.submit(put("kept"))
        second = writer.submit(flaky)
        gate.set()
        blocker.result(5)
        assert (first.result(5), second.result(5)) == ("kept", "ok")
    finally:
        writer.stop()
    assert calls["flaky"] == 2
    assert keys(runtime) == ["kept"]  # the retried group wrote its row once
