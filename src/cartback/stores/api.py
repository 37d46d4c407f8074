"""The API key dependency: every /v1 route but /v1/collect names its store by its key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cartback.core.services import read_session
from cartback.stores.models import Store
from cartback.stores.service import authenticate


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def current_store(request: Request, session: Annotated[Session, Depends(read_session)]) -> Store:
    return authenticate(session, bearer_key(request))


SessionDep = Annotated[Session, Depends(read_session)]
StoreDep = Annotated[Store, Depends(current_store)]
