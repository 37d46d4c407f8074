"""Send email over SMTP with the stdlib's synchronous client on one persistent connection.

A new connection per message halves throughput (743 vs 1,331 msgs/s against a C sink,
performance.md B6), so each channel keeps one connection open, serialised by a lock, and
reconnects once when the server has dropped it between sends. The worker runs several
channels (one per thread) when it wants more than one connection.

URLs::

    smtp://user:pass@mail.example.com:587?starttls=1&timeout=10
    smtps://user:pass@mail.example.com          (implicit TLS, port 465)
    smtp://127.0.0.1:1025                       (no TLS, no auth: a local relay or test sink)

Outcomes: a connection that fails or times out, a drop before DATA (after one reconnect), and any
4xx reply are :class:`TransientSendError`; a 5xx reply to MAIL, RCPT or DATA is
:class:`PermanentSendError` with code ``smtp.<reply code>`` and the server's text as reason.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
import threading
from urllib.parse import parse_qs, unquote, urlsplit

from cartback.channels.base import (
    OutgoingEmail,
    PermanentSendError,
    SendResult,
    TransientSendError,
)
from cartback.channels.breaker import CircuitBreaker
from cartback.channels.mime import build_mime
from cartback.core.clock import Clock, SystemClock

__all__ = ["SmtpChannel"]

log = logging.getLogger(__name__)

_DEFAULT_TIMEOUT = 10.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Dropped(Exception):
    """The connection went away before DATA; safe to retry on a fresh connection."""


class SmtpChannel:
    """An :class:`~cartback.channels.base.EmailChannel` for one SMTP server URL. Thread-safe."""

    name = "smtp"

    def __init__(
        self,
        url: str,
        *,
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP URL must look like smtp://user:pass@host:port or smtps://...")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout"}
        if unknown:
            raise ValueError(f"unknown SMTP URL option(s): {', '.join(sorted(unknown))}")
        self._implicit_tls = parts.scheme == "smtps"
        self._starttls = _flag(query.get("starttls", "0"))
        if self._implicit_tls and self._starttls:
            raise ValueError("smtps:// already uses TLS; drop starttls=1")
        self._timeout = float(query.get("timeout", _DEFAULT_TIMEOUT))
        self._host = parts.hostname
        default_port = 465 if self._implicit_tls else 587 if self._starttls else 25
        self._port = parts.port or default_port
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else ""
        self._local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._breaker = breaker
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._conn: smtplib.SMTP | None = None
        user = f"{parts.username}@" if parts.username else ""
        tls = "?starttls=1" if self._starttls else ""
        #: The URL without the password: the circuit breaker key, safe to log.
        self.key = f"{parts.scheme}://{user}{self._host}:{self._port}{tls}"

    def send(self, email: OutgoingEmail) -> SendResult:
        if self._breaker is not None:
            self._breaker.check(self.key)
        try:
            data = build_mime(email, date=self._clock.now())
        except ValueError as exc:
            raise PermanentSendError("message.invalid", str(exc)) from exc
        try:
            with self._lock:
                self._send_locked(email, data)
        except TransientSendError as exc:
            log.warning("smtp.send_failed", extra={"server": self.key, "code": exc.code})
            if self._breaker is not None:
                self._breaker.record_failure(self.key)
            raise
        if self._breaker is not None:
            # A permanent refusal also proves the server is up.
            self._breaker.record_success(self.key)
        domain = email.from_address.rpartition("@")[2]
        return SendResult(provider="smtp", provider_message_id=f"<{email.message_id}@{domain}>")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def _send_locked(self, email: OutgoingEmail, data: bytes) -> None:
        reused = self._conn is not None
        conn = self._conn or self._open()
        try:
            self._envelope(conn, email)
        except _Dropped as exc:
            self._drop()
            if not reused:
                raise TransientSendError("smtp.disconnected", str(exc)) from exc
            conn = self._open()  # an idle connection the server closed: one fresh try
            try:
                self._envelope(conn, email)
            except _Dropped as again:
                self._drop()
                raise TransientSendError("smtp.disconnected", str(again)) from again
        text: bytes | str
        try:
            code, text = conn.data(data)  # raises only when DATA itself is refused (no 354)
        except smtplib.SMTPResponseException as exc:
            code, text = exc.smtp_code, exc.smtp_error
        except OSError as exc:  # includes SMTPServerDisconnected and timeouts
            self._drop()
            raise TransientSendError(
                "smtp.data_lost", f"connection lost during DATA, delivery unknown: {exc}"
            ) from exc
        if code != 250:
            self._after_refusal(conn, code)
            raise _refusal(code, text)

    def _envelope(self, conn: smtplib.SMTP, email: OutgoingEmail) -> None:
        """MAIL FROM and RCPT TO; a refusal raises, a dropped connection raises _Dropped."""
        try:
            code, text = conn.mail(email.from_address)
            if code == 421:  # "closing connection", e.g. the server's per-connection limit
                raise _Dropped(_text(text))
            if code == 250:
                code, text = conn.rcpt(email.to_address)
        except OSError as exc:  # includes SMTPServerDisconnected and timeouts
            raise _Dropped(str(exc) or type(exc).__name__) from exc
        if code not in (250, 251):
            self._after_refusal(conn, code)
            raise _refusal(code, text)

    def _open(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = None
        try:
            if self._implicit_tls:
                conn = smtplib.SMTP_SSL(
                    self._host,
                    self._port,
                    local_hostname=self._local_hostname,
                    timeout=self._timeout,
                    context=self._tls_context(),
                )
            else:
                conn = smtplib.SMTP(
                    self._host,
                    self._port,
                    local_hostname=self._local_hostname,
                    timeout=self._timeout,
                )
            conn.ehlo_or_helo_if_needed()
            if self._starttls:
                conn.starttls(context=self._tls_context())
                conn.ehlo()
            if self._username is not None:
                conn.login(self._username, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            # The store's settings are wrong, not this message: retry once they are fixed.
            _close_quietly(conn)
            raise TransientSendError("smtp.auth", _text(exc.smtp_error)) from exc
        except smtplib.SMTPNotSupportedError as exc:
            _close_quietly(conn)
            raise TransientSendError("smtp.starttls", "server does not offer STARTTLS") from exc
        except smtplib.SMTPResponseException as exc:
            _close_quietly(conn)
            raise TransientSendError(f"smtp.{exc.smtp_code}", _text(exc.smtp_error)) from exc
        except OSError as exc:  # refused, unreachable, timeout, TLS failure, early disconnect
            _close_quietly(conn)
            raise TransientSendError("smtp.connect", str(exc) or type(exc).__name__) from exc
        log.debug("smtp.connected", extra={"server": self.key})
        self._conn = conn
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _after_refusal(self, conn: smtplib.SMTP, code: int) -> None:
        """Leave the connection ready for the next message, or drop it if it cannot be."""
        if code == 421:
            self._drop()
            return
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        _close_quietly(self._conn)
        self._conn = None


def _refusal(code: int, text: bytes | str) -> TransientSendError | PermanentSendError:
    reason = _text(text)
    if 500 <= code < 600:
        return PermanentSendError(f"smtp.{code}", reason)
    return TransientSendError(f"smtp.{code}", reason)


def _text(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def _flag(value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"expected a boolean (1/0, true/false), got {value!r}")


def _close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()
