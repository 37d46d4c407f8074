"""Provider callbacks: signed, idempotent, unauthenticated by API key.

The store is named in the path; its own settings verify the request. In order, every route:

1. loads the store: unknown, or the channel not set up for callbacks -> 404 problem;
2. reads the body, at most a few hundred KiB (SendGrid batches: a few MiB) -> 413;
3. checks the provider's proof -> 403 (Postmark without basic auth: 401), nothing written;
4. parses the payload -> 400 (not JSON/form) or 422 (a field named in the problem);
5. applies it in one transaction (see ``callbacks.service``): a replay changes nothing.

========================================================  =====================================
route                                                     proof (store setting)
========================================================  =====================================
POST /v1/callbacks/twilio/{store_id}/status               X-Twilio-Signature over
POST /v1/callbacks/twilio/{store_id}/inbound              ``base_url`` + this path (+ query)
                                                          (``channels.sms.twilio.auth_token``)
GET  /v1/callbacks/whatsapp/{store_id}                    hub.verify_token (``verify_token``)
POST /v1/callbacks/whatsapp/{store_id}                    X-Hub-Signature-256 (``app_secret``)
POST /v1/callbacks/telegram/{store_id}                    X-Telegram-Bot-Api-Secret-Token
                                                          (``channels.telegram.webhook_secret``)
POST /v1/callbacks/email/ses/{store_id}                   SNS signature + ``ses_topic_arns``
POST /v1/callbacks/email/sendgrid/{store_id}              ECDSA (``sendgrid_public_key``)
POST /v1/callbacks/email/mailgun/{store_id}               HMAC, 5 min (``mailgun_signing_key``)
POST /v1/callbacks/email/postmark/{store_id}              basic auth (``postmark_username`` /
                                                          ``postmark_password``)
========================================================  =====================================

Twilio signs the URL it was given, so configure exactly
``<CARTBACK_BASE_URL>/v1/callbacks/twilio/<store id>/status`` (and ``.../inbound``): the URL
checked is rebuilt from the instance's base URL, never from the request's Host header.
Twilio gets TwiML back (``text/xml``): the STOP / START confirmation or the HELP text.
Telegram gets a Bot API call back as the answer (``sendMessage`` "You'll get your cart
reminders here", ``answerCallbackQuery`` for buttons) or ``{}``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cartback.callbacks import _email_api, service
from cartback.callbacks._edge import (
    PROBLEMS,
    CallbackStore,
    forged,
    load_store,
    not_set_up,
    parsed,
    read_body,
    write,
)
from cartback.channels.inbound import telegram, twilio, whatsapp
from cartback.contacts.models import Contact
from cartback.contacts.phones import normalize_phone
from cartback.contacts.service import normalize_email
from cartback.core.services import Services, services
from cartback.errors import NotFound
from cartback.stores.api import SessionDep, StoreDep
from cartback.stores.service import store_settings

router = APIRouter(tags=["callbacks"])
router.include_router(_email_api.router)
_TWIML = "text/xml"


# --- Twilio -----------------------------------------------------------------------------------


async def _twilio_params(
    request: Request, svc: Services, store: CallbackStore, kind: str
) -> list[tuple[str, str]]:
    sms = store.settings.channels.sms
    if sms is None or sms.twilio is None:
        raise not_set_up("Twilio", "channels.sms.twilio")
    body = await read_body(request)
    params = parsed(twilio.parse_form, body)
    url = f"{svc.base_url.rstrip('/')}/v1/callbacks/twilio/{store.id}/{kind}"
    if request.url.query:
        url += f"?{request.url.query}"
    header = request.headers.get(twilio.SIGNATURE_HEADER)
    if not twilio.verify_signature(sms.twilio.auth_token, url, params, header):
        raise forged("twilio", store, f"{twilio.SIGNATURE_HEADER} does not sign this request")
    return params


@router.post(
    "/v1/callbacks/twilio/{store_id}/status",
    summary="Twilio status callback (delivered, undelivered, failed)",
    response_class=Response,
    responses={200: {"content": {_TWIML: {}}}, **PROBLEMS},
)
async def twilio_status(store_id: str, request: Request) -> Response:
    """Delivered moves the message to delivered; undelivered/failed to failed
    (``twilio.<ErrorCode>``) and asks the journey for the step's next channel. A status
    that would move a message backwards, a replay, or an unknown MessageSid changes nothing.
    """
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    params = await _twilio_params(request, svc, store, "status")
    report = parsed(twilio.parse_status, params)
    now = svc.clock.now()
    await write(
        svc, lambda s: service.apply_twilio_status(s, store_id=store.id, report=report, now=now)
    )
    return Response(twilio.twiml(None), media_type=_TWIML)


@router.post(
    "/v1/callbacks/twilio/{store_id}/inbound",
    summary="Twilio inbound message: STOP, START, HELP",
    response_class=Response,
    responses={200: {"content": {_TWIML: {}}}, **PROBLEMS},
)
async def twilio_inbound(store_id: str, request: Request) -> Response:
    """STOP words (and the store's ``policy.stop_words``) revoke SMS consent and suppress
    the number; START, YES, UNSTOP grant it again; HELP, INFO answer ``policy.help_text``.
    The answer is TwiML with the confirmation; once per MessageSid."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    params = await _twilio_params(request, svc, store, "inbound")
    inbound = parsed(twilio.parse_inbound, params)
    now = svc.clock.now()
    policy, locale = store.settings.policy, store.settings.locale
    reply = await write(
        svc,
        lambda s: service.handle_inbound_sms(
            s,
            store_id=store.id,
            store_name=store.name,
            policy=policy,
            locale=locale,
            inbound=inbound,
            now=now,
        ),
    )
    return Response(twilio.twiml(reply), media_type=_TWIML)


# --- WhatsApp ---------------------------------------------------------------------------------


@router.get(
    "/v1/callbacks/whatsapp/{store_id}",
    summary="WhatsApp webhook verification handshake",
    response_class=PlainTextResponse,
    responses=PROBLEMS,
)
async def whatsapp_handshake(store_id: str, request: Request) -> Response:
    """``hub.mode=subscribe`` with the store's ``verify_token``: ``hub.challenge`` echoed."""
    store = await run_in_threadpool(load_store, services(request), store_id)
    config = store.settings.channels.whatsapp
    if config is None or not config.verify_token:
        raise not_set_up("WhatsApp", "channels.whatsapp.verify_token")
    params = {key: request.query_params[key] for key in request.query_params}
    challenge = parsed(whatsapp.check_handshake, params, config.verify_token)
    if challenge is None:
        raise forged("whatsapp", store, "hub.verify_token is not this store's", "invalid_token")
    return PlainTextResponse(challenge)


@router.post(
    "/v1/callbacks/whatsapp/{store_id}",
    summary="WhatsApp status webhook (sent, delivered, read, failed)",
    responses=PROBLEMS,
)
async def whatsapp_statuses(store_id: str, request: Request) -> dict[str, int]:
    """Delivered and read move the message to delivered; failed to failed
    (``whatsapp.<code>``) and asks the journey for the step's next channel."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    config = store.settings.channels.whatsapp
    if config is None or not config.app_secret:
        raise not_set_up("WhatsApp", "channels.whatsapp.app_secret")
    body = await read_body(request)
    header = request.headers.get(whatsapp.SIGNATURE_HEADER)
    if not whatsapp.verify_signature(config.app_secret, body, header):
        raise forged("whatsapp", store, f"{whatsapp.SIGNATURE_HEADER} does not sign this body")
    reports = parsed(whatsapp.parse_statuses, body)
    now = svc.clock.now()

    def work(session: Session) -> int:
        return sum(
            service.apply_whatsapp_status(session, store_id=store.id, report=r, now=now)
            for r in reports
        )

    return {"statuses": len(reports), "changed": await write(svc, work)}


# --- Telegram ---------------------------------------------------------------------------------


@router.post(
    "/v1/callbacks/telegram/{store_id}",
    summary="Telegram bot webhook: /start links a chat, the opt-out button revokes consent",
    responses=PROBLEMS,
)
async def telegram_update(store_id: str, request: Request) -> JSONResponse:
    """``/start <token>`` (from :func:`~cartback.callbacks.service.telegram_link`) links the
    chat and records Telegram consent; the ``optout:cart`` button revokes it. The answer is a
    Bot API call (``sendMessage`` / ``answerCallbackQuery``) or ``{}``; a tampered token or
    an unknown contact is answered ``{}`` and changes nothing."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    config = store.settings.channels.telegram
    if config is None:
        raise not_set_up("Telegram", "channels.telegram")
    header = request.headers.get(telegram.SECRET_HEADER)
    if not telegram.verify_secret_token(config.webhook_secret, header):
        raise forged("telegram", store, f"{telegram.SECRET_HEADER} is not this store's")
    update = parsed(telegram.parse_update, await read_body(request))
    now = svc.clock.now()
    answer = await write(
        svc,
        lambda s: service.handle_telegram_update(
            s, store_id=store.id, signer=svc.signer, update=update, now=now
        ),
    )
    return JSONResponse(answer)


class TelegramLinkIn(BaseModel):
    """Exactly one way to find the contact."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=32)
    external_id: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> TelegramLinkIn:
        given = [v for v in (self.email, self.phone, self.external_id) if v]
        if len(given) != 1:
            raise ValueError("give exactly one of email, phone and external_id")
        if any(ch < " " for ch in given[0]):
            raise ValueError("control characters are not allowed")
        return self


class TelegramLinkOut(BaseModel):
    url: str = Field(examples=["https://t.me/acme_bot?start=3f2a9c0d..."])


@router.post(
    "/v1/contacts/telegram-link",
    summary="A contact's Telegram deep link",
    response_model=TelegramLinkOut,
    responses={401: {}, 404: {}, 422: {}},
)
def telegram_link(
    body: TelegramLinkIn, request: Request, store: StoreDep, session: SessionDep
) -> TelegramLinkOut:
    """``https://t.me/<bot>?start=<token>``: when the shopper opens it and presses Start,
    their chat is linked and Telegram consent recorded. 404 for a contact the store does not
    have or a store without ``channels.telegram``."""
    settings = store_settings(store)
    config = settings.channels.telegram
    if config is None:
        raise not_set_up("Telegram", "channels.telegram")
    if body.email:
        condition = Contact.email == normalize_email(body.email)
    elif body.phone:
        phone = normalize_phone(body.phone, country=settings.country).e164
        condition = Contact.phone == (phone or body.phone.strip())
    else:
        condition = Contact.external_id == body.external_id
    contact_id = session.execute(
        select(Contact.id).where(Contact.store_id == store.id, condition).limit(1)
    ).scalar_one_or_none()
    if contact_id is None:
        raise NotFound("This store has no such contact", code="contact_not_found")
    signer = services(request).signer
    return TelegramLinkOut(url=service.telegram_link(signer, config.bot_username, contact_id))
