"""What request handlers need, built by the composition root and kept on ``app.state``.

Routes in every domain read it through :func:`services`, so no route imports the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from cartback.core.clock import Clock
from cartback.core.signing import Signer
from cartback.core.writer import GroupCommitWriter


@dataclass
class Services:
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]  # read-only: never waits for SQLite's one writer
    clock: Clock
    writer: GroupCommitWriter
    signer: Signer
    base_url: str
    outbox: Any = None  # cartback.channels.OutboxChannel when email is captured


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def read_session(request: Request) -> Iterator[Session]:
    """A read-only session for one request."""
    session = services(request).readers()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def request_session(request: Request) -> Iterator[Session]:
    """A session for one request, committed when the route returns without error."""
    session = services(request).sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
