"""The embedded outbox in the browser: what cartback would have emailed, when no SMTP
server is configured (and in the demo)."""

from __future__ import annotations

import email
import email.policy
import re
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from cartback.core.services import services

router = APIRouter(include_in_schema=False)

_STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1f2937;color:#fff;padding:.8rem 1.2rem}header a{color:#fff}
table{border-collapse:collapse;width:100%}td,th{padding:.5rem 1.2rem;border-bottom:1px solid #eee;
text-align:left}tr:hover{background:#f8fafc}.meta{padding:1rem 1.2rem;background:#f8fafc}
iframe{width:100%;height:80vh;border:0}"""


def _shell(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><header><a href=/outbox>cartback outbox</a>"
        f"</header>{body}</body></html>"
    )


@router.get("/outbox")
def outbox_list(request: Request) -> Response:
    outbox = services(request).outbox
    if outbox is None:
        return PlainTextResponse("Email goes to the SMTP server; there is no outbox.", 404)
    rows = "".join(
        f"<tr><td>{escape(m.captured_at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
        f"<td>{escape(m.to_address)}</td>"
        f"<td><a href='/outbox/{escape(m.message_id)}'>{escape(m.subject)}</a></td></tr>"
        for m in outbox.list()
    )
    empty = "<p class=meta>No email yet. Reminders appear here as carts are abandoned.</p>"
    table = f"<table><tr><th>Captured</th><th>To</th><th>Subject</th></tr>{rows}</table>"
    return _shell("Outbox", table if rows else empty)


def _html_part(raw: bytes) -> tuple[email.message.EmailMessage, str]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    part = parsed.get_body(preferencelist=("html", "plain"))
    content = part.get_content() if part is not None else ""
    return parsed, str(content)


# before "/outbox/{message_id}", which would match "<id>.eml" too (routes match in order)
@router.get("/outbox/{message_id}.eml")
def outbox_raw(message_id: str, request: Request) -> Response:
    outbox = services(request).outbox
    found = outbox.get(message_id) if outbox is not None else None
    if found is None:
        return PlainTextResponse("Not found", 404)
    return Response(found.mime, media_type="message/rfc822")


@router.get("/outbox/{message_id}")
def outbox_message(message_id: str, request: Request) -> Response:
    outbox = services(request).outbox
    found = outbox.get(message_id) if outbox is not None else None
    if found is None:
        return PlainTextResponse("Not found", 404)
    parsed, _ = _html_part(found.mime)
    meta = "".join(
        f"<div><b>{escape(name)}:</b> {escape(str(parsed[name]))}</div>"
        for name in ("From", "To", "Subject", "Date", "List-Unsubscribe")
        if parsed[name]
    )
    return _shell(
        str(parsed["Subject"]),
        f"<div class=meta>{meta}<div><a href='/outbox/{escape(message_id)}.eml'>raw .eml</a>"
        f"</div></div><iframe sandbox src='/outbox/{escape(message_id)}/html'></iframe>",
    )


@router.get("/outbox/{message_id}/html")
def outbox_html(message_id: str, request: Request) -> Response:
    outbox = services(request).outbox
    found = outbox.get(message_id) if outbox is not None else None
    if found is None:
        return PlainTextResponse("Not found", 404)
    return HTMLResponse(_for_preview(_html_part(found.mime)[1]))


# The open pixel: previewing a message in the outbox must not count as the shopper's open.
_PIXEL = re.compile(r"<img\b[^>]*\bsrc=[\"'][^\"']*/o/[^\"']+\.gif[\"'][^>]*>", re.IGNORECASE)


def _for_preview(html: str) -> str:
    """The email as the shopper would see it, minus the open pixel."""
    return _PIXEL.sub("", html)
