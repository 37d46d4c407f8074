"""Twilio callbacks: X-Twilio-Signature over the real samples, parsing, keywords, TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from cartback.channels.inbound import InvalidCallback
from cartback.channels.inbound import twilio as tw
from support.callback_samples import http_sample

TOKEN = "12345"  # the samples' auth token (see their .source.txt)


def sample_url(name: str) -> str:
    sample = http_sample(name)
    return f"https://{sample.headers['Host']}{sample.target}"


@pytest.mark.parametrize(
    "name",
    [
        "twilio_status_callback_delivered",
        "twilio_status_callback_undelivered",
        "twilio_inbound_stop",
    ],
)
def test_the_samples_signatures_verify(name: str) -> None:
    sample = http_sample(name)
    params = tw.parse_form(sample.body)

    assert tw.verify_signature(TOKEN, sample_url(name), params, sample.headers[tw.SIGNATURE_HEADER])


def test_twilios_published_vector() -> None:
    # Twilio's request-validation docs example, as cross-checked by independent SDKs
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    assert tw.signature(TOKEN, url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert tw.signature(TOKEN, url, list(reversed(params))) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_the_default_port_may_be_added_or_dropped() -> None:
    sample = http_sample("twilio_inbound_stop")
    params = tw.parse_form(sample.body)
    header = sample.headers[tw.SIGNATURE_HEADER]

    assert tw.verify_signature(
        TOKEN, "https://hooks.example.com:443/twilio/inbound", params, header
    )
    assert not tw.verify_signature(
        TOKEN, "https://hooks.example.com:8443/twilio/inbound", params, header
    )


@pytest.mark.parametrize(
    ("token", "url", "change"),
    [
        ("54321", None, None),
        (TOKEN, "https://evil.example.com/twilio/status?m=cart123", None),
        (TOKEN, "https://hooks.example.com/twilio/status?m=cart124", None),
        (TOKEN, None, ("MessageStatus", "failed")),
        (TOKEN, None, ("Extra", "1")),
    ],
)
def test_any_change_breaks_the_signature(
    token: str, url: str | None, change: tuple[str, str] | None
) -> None:
    name = "twilio_status_callback_delivered"
    sample = http_sample(name)
    params = tw.parse_form(sample.body)
    if change is not None:
        params = [p for p in params if p[0] != change[0]] + [change]

    ok = tw.verify_signature(
        token, url or sample_url(name), params, sample.headers[tw.SIGNATURE_HEADER]
    )

    assert ok is False


@pytest.mark.parametrize("header", [None, "", "not base64 at all", "S/oqKrqFzSvqU21eyhHQzqwQR6é="])
def test_a_missing_or_garbled_header_does_not_verify(header: str | None) -> None:
    name = "twilio_status_callback_delivered"
    params = tw.parse_form(http_sample(name).body)

    assert tw.verify_signature(TOKEN, sample_url(name), params, header) is False


def test_repeated_parameters_are_signed_value_by_sorted_value() -> None:
    url = "https://x.test/cb"
    expected = tw.signature(TOKEN, url, [("A", "1"), ("A", "2"), ("B", "")])

    assert tw.signature(TOKEN, url, [("B", ""), ("A", "2"), ("A", "1")]) == expected


def test_a_delivered_status_parses() -> None:
    params = tw.parse_form(http_sample("twilio_status_callback_delivered").body)

    assert tw.parse_status(params) == tw.TwilioStatus(
        message_sid="SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        status="delivered",
        error_code=None,
        to_number="+14155552345",
        from_number="+14155550100",
    )


def test_an_undelivered_status_carries_its_error_code() -> None:
    params = tw.parse_form(http_sample("twilio_status_callback_undelivered").body)
    report = tw.parse_status(params)

    assert (report.status, report.error_code) == ("undelivered", "30003")
    assert tw.failure_reason(report.status, report.error_code) == (
        "undelivered: unreachable destination handset (Twilio error 30003)"
    )


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ("MessageStatus=delivered", "missing_field"),
        ("MessageSid=SM1&MessageStatus=", "missing_field"),
        ("MessageSid=SM%2F..&MessageStatus=sent", "invalid_field"),
        ("MessageSid=SM1&MessageStatus=sent&ErrorCode=abc", "invalid_field"),
    ],
)
def test_a_status_without_what_it_needs_is_refused(form: str, code: str) -> None:
    with pytest.raises(InvalidCallback) as caught:
        tw.parse_status(tw.parse_form(form.encode()))

    assert caught.value.code == code


def test_a_body_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InvalidCallback) as caught:
        tw.parse_form(b"Body=\xff\xfe")

    assert caught.value.code == "malformed_form"


def test_the_inbound_stop_sample_parses() -> None:
    inbound = tw.parse_inbound(tw.parse_form(http_sample("twilio_inbound_stop").body))

    assert inbound == tw.TwilioInbound(
        message_sid="SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        from_number="+14155552345",
        body="STOP",
        to_number="+14155550100",
        opt_out_type="STOP",
    )


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop  ",
        "STOPALL",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "REVOKE",
        "optout",
        "Stop please",
        "STOP.",
    ],
)
def test_stop_words(body: str) -> None:
    assert tw.classify(body) == tw.Keyword.STOP


@pytest.mark.parametrize("body", ["START", "yes", "Unstop"])
def test_start_words(body: str) -> None:
    assert tw.classify(body) == tw.Keyword.START


@pytest.mark.parametrize("body", ["HELP", "info", "Help!"])
def test_help_words(body: str) -> None:
    assert tw.classify(body) == tw.Keyword.HELP


@pytest.mark.parametrize("body", ["", "   ", "Where is my order?", "stopped by the shop", "ending"])
def test_other_messages_are_no_keyword(body: str) -> None:
    assert tw.classify(body) is None


def test_a_stores_own_stop_words_count_in_any_case() -> None:
    words = ["ARRÊT", "Stopp", "no more texts"]

    assert tw.classify("arrêt", extra_stop_words=words) == tw.Keyword.STOP
    assert tw.classify("STOPP bitte", extra_stop_words=words) == tw.Keyword.STOP
    assert tw.classify("No  more texts", extra_stop_words=words) == tw.Keyword.STOP
    assert tw.classify("arrêt") is None


def test_advanced_opt_out_type_wins_over_the_body() -> None:
    assert tw.classify("ALTO", opt_out_type="STOP") == tw.Keyword.STOP
    assert tw.classify("hello", opt_out_type="SOMETHING_NEW") is None


def test_twiml_escapes_the_text() -> None:
    xml = tw.twiml('Shoes & <Socks> "Co": reply STOP\x07')

    assert xml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        'Shoes &amp; &lt;Socks&gt; "Co": reply STOP</Message></Response>'
    )
    assert ET.fromstring(xml).findtext("Message") == 'Shoes & <Socks> "Co": reply STOP'


def test_twiml_without_text_is_an_empty_response() -> None:
    assert tw.twiml(None) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
