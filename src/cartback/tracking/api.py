"""Links inside messages: ``/r/<token>`` restore, ``/o/<token>.gif`` open pixel,
``/u/<token>`` unsubscribe (a confirmation page on GET; RFC 8058 one-click POST).

A token that does not verify gets a plain 404, the same as a token for nothing.
"""

from __future__ import annotations

import asyncio
import base64
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from cartback.core.services import request_session, services
from cartback.messages.compose import message_id_of
from cartback.messages.models import Message
from cartback.stores.models import Store
from cartback.tracking import service

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(request_session)]
_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _message(request: Request, session: Session, purpose: str, token: str) -> Message | None:
    message_id = services(request).signer.unsign(purpose, token)
    return session.get(Message, message_id) if message_id else None


def _not_found() -> PlainTextResponse:
    return PlainTextResponse("Not found", status_code=404, headers=_NO_STORE)


@router.get("/r/{token}")
def restore(token: str, request: Request, session: SessionDep) -> Response:
    message = _message(request, session, "r", token)
    if message is None:
        return _not_found()
    target = service.record_click(session, message, now=services(request).clock.now())
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)


@router.get("/s/{code}")
def short_restore(code: str, request: Request, session: SessionDep) -> Response:
    """The short restore link of SMS and WhatsApp buttons (see messages.compose.short_code)."""
    message_id = message_id_of(code)
    message = session.get(Message, message_id) if message_id else None
    if message is None:
        return _not_found()
    target = service.record_click(session, message, now=services(request).clock.now())
    return RedirectResponse(target, status_code=302, headers=_NO_STORE)


@router.get("/o/{token}.gif")
def open_pixel(token: str, request: Request, session: SessionDep) -> Response:
    message = _message(request, session, "o", token)
    if message is not None:
        service.record_open(session, message, now=services(request).clock.now())
    return Response(_PIXEL, media_type="image/gif", headers=_NO_STORE)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222;line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;
border:0;background:#222;color:#fff;cursor:pointer}}
button:focus-visible{{outline:3px solid #2563eb;outline-offset:2px}}</style></head>
<body><main>{body}</main></body></html>"""
    return HTMLResponse(html, status_code=status, headers=_NO_STORE)


def _unsubscribed_page(store_name: str) -> HTMLResponse:
    return _page(
        "Unsubscribed",
        f"<h1>You are unsubscribed</h1><p>{escape(store_name)} will not email you cart "
        "reminders any more.</p>",
    )


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request, session: SessionDep) -> Response:
    """A confirmation page. A GET never unsubscribes: mail scanners prefetch links."""
    message = _message(request, session, "u", token)
    if message is None:
        return _not_found()
    store = session.get(Store, message.store_id)
    name = escape(store.name if store else "this store")
    if message.unsubscribed_at is not None:
        return _unsubscribed_page(store.name if store else "this store")
    return _page(
        "Unsubscribe",
        f"<h1>Unsubscribe from {name}?</h1><p>You will get no more cart reminders at "
        f"<strong>{escape(message.to_address)}</strong>.</p>"
        f'<form method="post"><input type="hidden" name="confirm" value="1">'
        f'<button type="submit">Unsubscribe</button></form>',
    )


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request) -> Response:
    """RFC 8058 one-click (``List-Unsubscribe=One-Click``, urlencoded or multipart) or
    the confirmation form. Never a redirect; no cookie or login needed."""
    form = await request.form()
    one_click = str(form.get("List-Unsubscribe", "")).strip() == "One-Click"
    svc = services(request)

    def work(session: Session) -> str | None:
        """Unsubscribe; the store's name for the confirmation, None for a bad token."""
        message_id = svc.signer.unsign("u", token)
        message = session.get(Message, message_id) if message_id else None
        if message is None:
            return None
        source = "one-click unsubscribe" if one_click else "unsubscribe page"
        service.unsubscribe(session, message, now=svc.clock.now(), source=source)
        store = session.get(Store, message.store_id)
        return store.name if store else "this store"

    store_name = await asyncio.wrap_future(svc.writer.submit(work))
    if store_name is None:
        return _not_found()
    if one_click:
        return PlainTextResponse("Unsubscribed", headers=_NO_STORE)
    return _unsubscribed_page(store_name)
