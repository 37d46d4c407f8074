"""``POST /v1/callbacks/email/{provider}/{store_id}``: bounces and complaints from Amazon SES
(through SNS), SendGrid, Mailgun and Postmark, each verified its own way (see ``api``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cartback.callbacks import service
from cartback.callbacks._edge import (
    MAX_BATCH_BYTES,
    PROBLEMS,
    CallbackStore,
    forged,
    load_store,
    log,
    not_set_up,
    parsed,
    read_body,
    write,
)
from cartback.channels.inbound import EmailEvent, mailgun, postmark, sendgrid, ses
from cartback.core.services import Services, services
from cartback.errors import BadRequest, NotFound, Unauthorized, Unavailable

router = APIRouter(tags=["callbacks"])


def certificate_fetcher() -> ses.CertificateFetcher:
    """Where SNS signing certificates come from (tests override this dependency)."""
    return _CERTIFICATES


def subscription_confirmer() -> Callable[[str], None]:
    """What GETs an SNS SubscribeURL (tests override this dependency)."""
    return ses.confirm_subscription


_CERTIFICATES = ses.CertificateCache()
Fetcher = Annotated[ses.CertificateFetcher, Depends(certificate_fetcher)]
Confirmer = Annotated[Callable[[str], None], Depends(subscription_confirmer)]


@router.post(
    "/v1/callbacks/email/{provider}/{store_id}",
    summary="Email bounces and complaints: ses, sendgrid, mailgun, postmark",
    responses={401: {}, 503: {}, **PROBLEMS},
)
async def email_events(
    provider: str, store_id: str, request: Request, fetch: Fetcher, confirm: Confirmer
) -> dict[str, Any]:
    """Hard bounces and complaints (and unsubscribes) suppress the address, mark the
    message bounced / complained and end the contact's journeys; deliveries mark it
    delivered. SES: a SubscriptionConfirmation for a topic in ``ses_topic_arns`` is
    confirmed by GETting its SubscribeURL."""
    receive = _EMAIL_PROVIDERS.get(provider)
    if receive is None:
        raise NotFound(
            f"No email provider {provider!r}; use one of {', '.join(_EMAIL_PROVIDERS)}",
            code="unknown_provider",
        )
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    found = await receive(request, svc, store, _Sns(fetch, confirm))
    if isinstance(found, dict):
        return found
    events = found
    now = svc.clock.now()

    def work(session: Session) -> int:
        return sum(
            service.apply_email_event(session, store_id=store.id, event=e, now=now) for e in events
        )

    return {"events": len(events), "changed": await write(svc, work)}


@dataclass(frozen=True)
class _Sns:
    fetch: ses.CertificateFetcher
    confirm: Callable[[str], None]


_Received = list[EmailEvent] | dict[str, Any]


async def _ses(request: Request, svc: Services, store: CallbackStore, sns: _Sns) -> _Received:
    topics = store.settings.channels.email_events.ses_topic_arns
    if not topics:
        raise not_set_up("Amazon SES", "channels.email_events.ses_topic_arns")
    message = parsed(ses.parse_envelope, await read_body(request))
    declared = request.headers.get(ses.MESSAGE_TYPE_HEADER)
    if declared is not None and declared != message.type:
        raise BadRequest(
            f"{ses.MESSAGE_TYPE_HEADER} says {declared!r}, the body {message.type!r}",
            code="type_mismatch",
        )
    if message.topic_arn not in topics:
        raise forged("ses", store, "TopicArn is not one of this store's topics", "unknown_topic")
    try:
        valid = await run_in_threadpool(ses.verify, message, sns.fetch)
    except ses.CertificateUnavailable:
        raise Unavailable(
            "The SNS signing certificate could not be fetched; retry later",
            code="certificate_unavailable",
        ) from None
    if not valid:
        raise forged("ses", store, "The SNS signature does not verify")
    if message.type == "SubscriptionConfirmation":
        return await _confirm(sns, message, store)
    if message.type != "Notification":
        return {"events": 0, "changed": 0}
    return parsed(ses.parse_events, message.message)


async def _confirm(sns: _Sns, message: ses.SnsMessage, store: CallbackStore) -> dict[str, Any]:
    assert message.subscribe_url is not None  # verify() refused it otherwise
    try:
        await run_in_threadpool(sns.confirm, message.subscribe_url)
    except Exception as exc:
        log.warning(
            "callback.ses_confirm_failed",
            extra={"store_id": store.id, "error": type(exc).__name__},
        )
        raise Unavailable(
            "The subscription could not be confirmed; SNS will send it again",
            code="confirmation_failed",
        ) from None
    log.info("callback.ses_subscribed", extra={"store_id": store.id})
    return {"confirmed": True, "topic_arn": message.topic_arn}


async def _sendgrid(request: Request, svc: Services, store: CallbackStore, sns: _Sns) -> _Received:
    key = store.settings.channels.email_events.sendgrid_public_key
    if not key:
        raise not_set_up("SendGrid", "channels.email_events.sendgrid_public_key")
    body = await read_body(request, MAX_BATCH_BYTES)
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER)
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER)
    if not sendgrid.verify(key, body, signature, timestamp):
        raise forged("sendgrid", store, f"{sendgrid.SIGNATURE_HEADER} does not verify")
    return parsed(sendgrid.parse_events, body)


async def _mailgun(request: Request, svc: Services, store: CallbackStore, sns: _Sns) -> _Received:
    key = store.settings.channels.email_events.mailgun_signing_key
    if not key:
        raise not_set_up("Mailgun", "channels.email_events.mailgun_signing_key")
    data = parsed(mailgun.load, await read_body(request))
    signature = mailgun.read_signature(data)
    if not mailgun.verify(key, signature, now=svc.clock.now()):
        raise forged("mailgun", store, "The signature does not verify or is over 5 minutes old")
    return parsed(mailgun.parse_events, data)


async def _postmark(request: Request, svc: Services, store: CallbackStore, sns: _Sns) -> _Received:
    config = store.settings.channels.email_events
    if not config.postmark_username or not config.postmark_password:
        raise not_set_up("Postmark", "channels.email_events.postmark_username and _password")
    given = postmark.basic_credentials(request.headers.get("authorization"))
    if given is None:
        raise Unauthorized(
            "Put the store's basic auth credentials in the webhook URL", code="missing_credentials"
        )
    if not postmark.credentials_match(given, config.postmark_username, config.postmark_password):
        raise forged(
            "postmark", store, "The basic auth credentials are wrong", "invalid_credentials"
        )
    return parsed(postmark.parse_events, await read_body(request))


_EMAIL_PROVIDERS = {"ses": _ses, "sendgrid": _sendgrid, "mailgun": _mailgun, "postmark": _postmark}
