from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartback.channels import OutgoingEmail, build_mime

DATE = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

# Letters, digits and punctuation that shoppers and stores in our six languages write.
ALPHABETS = {
    "en": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ₽«»—",
    "kk": "әғқңөұүһіӘҒҚҢӨҰҮҺІабвгдежзийклмнопрстуфхцчшщъыьэюя₸",
    "uz": "abdefghijklmnopqrstuvxyzoʻgʻshchngOʻGʻ'soʻm",
    "fa": "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی‌۰۱۲۳۴۵۶۷۸۹،؟\u200f\u2067\u2069",
    "lt": "ąčęėįšųūžĄČĘĖĮŠŲŪŽ€",
}
PUNCTUATION = " .,:;!?\"'()<>[]@=?-_/\\%&*+#$\t🛒"


def language_text(min_size: int = 0, max_size: int = 120) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(ALPHABETS)).flatmap(
        lambda lang: st.text(
            alphabet=ALPHABETS[lang] + PUNCTUATION, min_size=min_size, max_size=max_size
        )
    )


headerish = st.one_of(
    language_text(),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=200),
)
bodies = st.one_of(
    language_text(max_size=2000),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=2000),
)


def make_email(**overrides: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "message_id": "0f3c2a9b8e7d4c6a",
        "from_address": "shop@example.com",
        "from_name": "Example Shop",
        "to_address": "ana@example.org",
        "to_name": "Ana",
        "subject": "Did you forget something?",
        "text": "Hello\nReturn: https://example.com/r/abc\n",
        "html": "<p>Hello</p>",
        "headers": (
            ("List-Unsubscribe", "<https://example.com/u/tok123>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def collapse(name: str) -> str:
    """Display names are written with runs of whitespace collapsed and trimmed."""
    return " ".join(name.split())


def display_name(message: EmailMessage, header: str) -> str:
    """The display name as an RFC 2047 reader sees it.

    The stdlib's policy parser keeps the folding space between two adjacent encoded words in
    a phrase, which RFC 2047 section 6.2 says to ignore; so a long non-ASCII name comes back
    from it with a stray space. Decode the phrase as the RFC says, and check that the policy
    parser agrees whenever the name fits in one encoded word.
    """
    raw = next(value for name, value in message.raw_items() if name == header)
    phrase = raw.rsplit("<", 1)[0].strip() if "<" in raw else ""
    if phrase.startswith('"'):
        decoded = unquote(phrase)
    else:
        decoded = str(make_header(decode_header(phrase))) if phrase else ""
    if phrase.count("=?") <= 1:
        assert message[header].addresses[0].display_name == decoded
    return decoded


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def test_simple_message_has_every_header_and_both_parts() -> None:
    raw = build_mime(make_email(reply_to="help@example.com"), date=DATE)

    message = parse(raw)
    assert message.defects == []
    assert message["Date"] == "Mon, 05 Jan 2026 09:30:00 +0000"
    assert message["From"] == "Example Shop <shop@example.com>"
    assert message["To"] == "Ana <ana@example.org>"
    assert message["Reply-To"] == "help@example.com"
    assert message["Subject"] == "Did you forget something?"
    assert message["Message-ID"] == "<0f3c2a9b8e7d4c6a@example.com>"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == "<https://example.com/u/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content() == "Hello\r\nReturn: https://example.com/r/abc\r\n"
    assert html.get_content_type() == "text/html"
    assert html.get_content() == "<p>Hello</p>"


def test_every_line_ends_in_crlf_and_stays_short() -> None:
    raw = build_mime(
        make_email(subject="word " * 60 + "end", text="x" * 500, html="ы" * 500), date=DATE
    )

    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_date_keeps_its_offset() -> None:
    date = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))

    message = parse(build_mime(make_email(), date=date))

    assert message["Date"] == "Sun, 01 Mar 2026 12:00:00 +0500"


@settings(max_examples=200, deadline=None)
@given(
    subject=headerish,
    from_name=headerish,
    to_name=st.one_of(st.none(), headerish),
    text=bodies,
    html=bodies,
)
def test_round_trips_through_the_stdlib_parser(
    subject: str, from_name: str, to_name: str | None, text: str, html: str
) -> None:
    outgoing = make_email(
        subject=subject, from_name=from_name, to_name=to_name, text=text, html=html
    )

    raw = build_mime(outgoing, date=DATE)

    message = parse(raw)
    assert message.defects == []
    assert str(message["Subject"]) == subject
    assert message["From"].addresses[0].addr_spec == "shop@example.com"
    assert display_name(message, "From") == collapse(from_name)
    assert message["To"].addresses[0].addr_spec == "ana@example.org"
    assert display_name(message, "To") == collapse(to_name or "")
    assert message["Message-ID"] == "<0f3c2a9b8e7d4c6a@example.com>"
    assert message["List-Unsubscribe"] == "<https://example.com/u/tok123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text_part, html_part = message.iter_parts()
    assert text_part.defects == [] and html_part.defects == []
    assert text_part.get_content() == crlf(text)
    assert html_part.get_content() == crlf(html)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: victim@example.net"},
        {"subject": "Hi\nBcc: victim@example.net"},
        {"subject": "Hi\rthere"},
        {"from_name": "Shop\r\nBcc: victim@example.net"},
        {"to_name": "Ana\nX-Evil: 1"},
        {"headers": (("List-Unsubscribe", "<https://e.com/u>\r\nBcc: victim@example.net"),)},
        {"headers": (("X-Evil\r\nBcc", "victim@example.net"),)},
        {"headers": (("Bcc", "victim@example.net"),)},
        {"to_address": "ana@example.org\r\nBcc: victim@example.net"},
        {"to_address": "Ana <ana@example.org>"},
        {"from_address": "shop"},
        {"reply_to": "help@example.com\nBcc: x@example.net"},
        {"message_id": "abc>\r\nBcc: x@example.net"},
    ],
)
def test_rejects_header_injection_and_malformed_headers(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_mime(make_email(**overrides), date=DATE)


def test_rejects_a_naive_date() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_mime(make_email(), date=datetime(2026, 1, 5, 9, 0))  # noqa: DTZ001
