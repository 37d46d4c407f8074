"""``POST /v1/push-subscriptions``: a device that takes push for a contact.

The store (or, later, the snippet) registers what the browser's ``PushManager.subscribe``
returned, or a mobile app's FCM registration token. Granting the browser's or the app's
notification permission is the opt-in: it is kept on the consent ledger with its proof.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cartback.contacts import service as contacts
from cartback.contacts.models import PushSubscription
from cartback.core.ids import new_id
from cartback.core.services import read_session, services
from cartback.errors import BadRequest
from cartback.ingest.schemas import ConsentProof, ContactIn, Strict
from cartback.ingest.service import identify_contact
from cartback.stores.api import bearer_key
from cartback.stores.models import Store
from cartback.stores.service import authenticate, store_settings

router = APIRouter(tags=["contacts"])


class WebKeys(Strict):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(Strict):
    contact: ContactIn
    kind: Literal["web", "fcm"] = "web"
    endpoint: str | None = Field(
        None, max_length=2048, pattern=r"^https://", description="web: the push service URL"
    )
    keys: WebKeys | None = Field(None, description="web: the subscription's keys")
    token: str | None = Field(None, max_length=4096, description="fcm: the registration token")
    proof: ConsentProof | None = None

    @model_validator(mode="after")
    def _complete(self) -> PushSubscriptionIn:
        if self.kind == "web" and (self.endpoint is None or self.keys is None):
            raise ValueError("a web subscription needs 'endpoint' and 'keys' (p256dh, auth)")
        if self.kind == "fcm" and not self.token:
            raise ValueError("an fcm subscription needs the registration 'token'")
        return self


def _store(request: Request, session: Annotated[Session, Depends(read_session)]) -> Store:
    return authenticate(session, bearer_key(request))


@router.post(
    "/v1/push-subscriptions",
    status_code=201,
    summary="Register a device that takes push notifications for a contact",
)
async def add_push_subscription(
    body: PushSubscriptionIn, request: Request, store: Annotated[Store, Depends(_store)]
) -> dict[str, Any]:
    svc = services(request)
    if not (body.contact.email or body.contact.phone or body.contact.external_id):
        raise BadRequest("Name the contact by email, phone or external_id", code="contact_required")
    store_id, settings = store.id, store_settings(store)

    def work(session: Session) -> dict[str, Any]:
        now = svc.clock.now()
        contact = identify_contact(
            session,
            store_id=store_id,
            data=body.contact,
            default_country=settings.country,
            now=now,
        )
        endpoint = body.endpoint if body.kind == "web" else body.token
        assert endpoint is not None
        found = session.execute(
            select(PushSubscription).where(
                PushSubscription.store_id == store_id, PushSubscription.endpoint == endpoint
            )
        ).scalar_one_or_none()
        if found is None:
            found = PushSubscription(
                id=new_id(), store_id=store_id, endpoint=endpoint, created_at=now
            )
            session.add(found)
        found.contact_id = contact.id
        found.kind = body.kind
        found.keys = body.keys.model_dump() if body.keys else {}
        found.user_agent = body.proof.user_agent if body.proof else None
        contacts.record_consent(
            session,
            contact=contact,
            channel="push",
            granted=True,
            source=f"{body.kind}_push_permission",
            occurred_at=now,
            proof=body.proof.model_dump(exclude_none=True) if body.proof else {},
        )
        session.flush()
        return {"id": found.id, "kind": found.kind}

    return await asyncio.wrap_future(svc.writer.submit(work))
