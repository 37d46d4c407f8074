"""Twilio callbacks in (integrations.md section 3): status callbacks and inbound messages.

Both are form-encoded POSTs signed with ``X-Twilio-Signature``::

    base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))

where ``url`` is the full public URL Twilio requested (scheme, host, port if any, path,
query string) and the POST parameters are sorted by name (a repeated name: each distinct
value, sorted). Behind a proxy the URL must be rebuilt from the public base URL, never
from the request's ``Host``. Twilio adds parameters without notice, so every received
parameter is signed and none is refused for being unknown.

Worked example (the ``twilio_status_callback_delivered`` sample, auth token ``12345``)::

    >>> signature("12345", "https://hooks.example.com/twilio/status?m=cart123", params)
    'S/oqKrqFzSvqU21eyhHQzqwQR68='

Inbound keywords (:func:`classify`): the first word of the trimmed body, any case, with
trailing punctuation dropped, or the whole body (a store's own multi-word stop phrase);
``OptOutType`` (Advanced Opt-Out) wins when Twilio sends it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from cartback.channels.inbound.errors import InvalidCallback

__all__ = [
    "HELP_WORDS",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "SIGNATURE_HEADER",
    "Keyword",
    "TwilioInbound",
    "TwilioStatus",
    "classify",
    "failure_reason",
    "parse_form",
    "parse_inbound",
    "parse_status",
    "signature",
    "twiml",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's default opt-out handling (REVOKE and OPTOUT since 2025-04-29), opt-in and help.
OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})
# A status callback has ~12 parameters, an inbound MMS ~40; far more is not Twilio.
MAX_FIELDS = 200
MAX_BODY_CHARS = 1600  # Twilio's limit for one message body
MAX_ADDRESS_CHARS = 64  # E.164 is 16; channel addresses ("whatsapp:+1...") a little more

_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_ERROR_CODE = re.compile(r"\d{1,6}")
_DEFAULT_PORTS = {"https": 443, "http": 80}
_PUNCTUATION = ".,!?;:'\"()[]"
# Characters XML 1.0 cannot hold at all (escaping does not help).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# What the delivery-report error codes mean (https://www.twilio.com/docs/api/errors/<code>).
ERROR_MEANINGS: dict[str, str] = {
    "21610": "the recipient replied STOP",
    "21614": "not a mobile number",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered as spam or a carrier violation",
    "30008": "unknown error",
    "30032": "toll-free number not verified",
    "30034": "message from an unregistered number (US A2P 10DLC)",
}


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class TwilioStatus:
    """One status callback. ``status`` is Twilio's ``MessageStatus`` in lower case:
    queued, sending, sent, delivered, undelivered, failed, read, ... (kept as given)."""

    message_sid: str
    status: str
    error_code: str | None = None
    to_number: str | None = None
    from_number: str | None = None


@dataclass(frozen=True, slots=True)
class TwilioInbound:
    """One message a shopper sent to the store's number."""

    message_sid: str
    from_number: str
    body: str
    to_number: str | None = None
    opt_out_type: str | None = None  # STOP | START | HELP, with Advanced Opt-Out only


def parse_form(body: bytes) -> list[tuple[str, str]]:
    """The form's ``(name, value)`` pairs in the order received, blanks kept (signed too)."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCallback("The body is not UTF-8 form data", code="malformed_form") from None
    try:
        params = parse_qsl(decoded, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise InvalidCallback(
            f"The form has more than {MAX_FIELDS} fields", code="malformed_form"
        ) from None
    if any("\x00" in name or "\x00" in value for name, value in params):
        raise InvalidCallback("The form has a NUL character", code="malformed_form")
    return params


def signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    payload = url + "".join(
        name + value for name in sorted(grouped) for value in sorted(grouped[name])
    )
    mac = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def verify_signature(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], header: str | None
) -> bool:
    """True when ``header`` signs ``params`` POSTed to ``url`` (constant-time).

    Like Twilio's SDKs, the URL is also tried with the scheme's default port added or
    removed: which of the two Twilio signed depends on how the URL was configured.
    """
    if not header or not auth_token:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    found = False
    for candidate in _url_variants(url):
        expected = signature(auth_token, candidate, params).encode("ascii")
        found |= hmac.compare_digest(given, expected)
    return found


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    variants = [url]
    if default is None:
        return variants
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


def _fields(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The first value of each name (Twilio never repeats the fields we read)."""
    fields: dict[str, str] = {}
    for name, value in params:
        fields.setdefault(name, value)
    return fields


def _sid(fields: dict[str, str], *names: str) -> str:
    value = next((fields[name] for name in names if fields.get(name)), None)
    if value is None:
        raise InvalidCallback(f"{names[0]} is missing", code="missing_field")
    if not _SID.fullmatch(value):
        raise InvalidCallback(f"{names[0]} is not a Twilio SID", code="invalid_field")
    return value


def parse_status(params: Sequence[tuple[str, str]]) -> TwilioStatus:
    fields = _fields(params)
    sid = _sid(fields, "MessageSid", "SmsSid")
    status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").strip().lower()
    if not status:
        raise InvalidCallback("MessageStatus is missing", code="missing_field")
    if not status.replace("_", "").isalpha() or len(status) > 32:
        raise InvalidCallback("MessageStatus is not a Twilio status", code="invalid_field")
    error_code = fields.get("ErrorCode") or None
    if error_code is not None and not _ERROR_CODE.fullmatch(error_code):
        raise InvalidCallback("ErrorCode must be a number", code="invalid_field")
    return TwilioStatus(
        message_sid=sid,
        status=status,
        error_code=error_code,
        to_number=fields.get("To") or None,
        from_number=fields.get("From") or None,
    )


def parse_inbound(params: Sequence[tuple[str, str]]) -> TwilioInbound:
    fields = _fields(params)
    sid = _sid(fields, "MessageSid", "SmsMessageSid", "SmsSid")
    sender = (fields.get("From") or "").strip()
    if not sender:
        raise InvalidCallback("From is missing", code="missing_field")
    if len(sender) > MAX_ADDRESS_CHARS:
        raise InvalidCallback("From is not a phone number or address", code="invalid_field")
    return TwilioInbound(
        message_sid=sid,
        from_number=sender,
        body=fields.get("Body", "")[:MAX_BODY_CHARS],
        to_number=fields.get("To") or None,
        opt_out_type=(fields.get("OptOutType") or "").strip().upper() or None,
    )


def classify(
    body: str, *, extra_stop_words: Iterable[str] = (), opt_out_type: str | None = None
) -> Keyword | None:
    """Which keyword a shopper's message is, if any.

    >>> classify("  Stop please")
    <Keyword.STOP: 'stop'>
    >>> classify("arrêt", extra_stop_words=["ARRÊT"])
    <Keyword.STOP: 'stop'>
    >>> classify("Where is my order?") is None
    True
    """
    if opt_out_type is not None:
        try:
            return Keyword(opt_out_type.strip().lower())
        except ValueError:
            pass  # a type Twilio added later: read the body instead
    whole = " ".join(body.split()).casefold()
    if not whole:
        return None
    first = whole.split(" ", 1)[0].strip(_PUNCTUATION)
    extra = {" ".join(word.split()).casefold() for word in extra_stop_words} - {""}
    if first in OPT_OUT_WORDS or first in extra or whole in extra:
        return Keyword.STOP
    if first in OPT_IN_WORDS:
        return Keyword.START
    if first in HELP_WORDS:
        return Keyword.HELP
    return None


def twiml(text: str | None) -> str:
    """A TwiML answer: ``<Response><Message>text</Message></Response>``, or an empty
    ``<Response/>`` (no reply) for None. ``text`` is XML-escaped."""
    if text is None:
        return f"{_XML_DECLARATION}<Response/>"
    safe = escape(_NOT_XML.sub("", text))
    return f"{_XML_DECLARATION}<Response><Message>{safe}</Message></Response>"


def failure_reason(status: str, error_code: str | None) -> str:
    """People's words for a failed delivery report, e.g.
    ``undelivered: unreachable destination handset (Twilio error 30003)``."""
    if error_code is None:
        return f"{status}: no error code given"
    meaning = ERROR_MEANINGS.get(error_code, "see Twilio's error reference")
    return f"{status}: {meaning} (Twilio error {error_code})"
