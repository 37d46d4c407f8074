"""``cartback store configure | show`` and ``cartback channels test`` as a store owner runs
them: settings from a YAML file, credentials never printed, a test message through the
store's own provider (a Twilio stand-in on loopback) and the provider's answer shown."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

from acceptance_harness import Cartback

from support.stand_in import Received, Reply, Serve

AUTH_TOKEN = "twilio-secret-token-123"
UNSUBSCRIBED = "+14155550111"


def twilio(samples_dir: Path) -> object:
    sample = (samples_dir / "twilio_message_create_response.json").read_bytes()

    def answer(request: Received) -> Reply:
        if dict(parse_qsl(request.body.decode()))["To"] == UNSUBSCRIBED:
            error = {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}
            return Reply(400, json.dumps({**error, "status": 400}).encode())
        return Reply(201, sample)

    return answer


def test_configure_show_and_test_the_sms_channel(
    cartback: Cartback, serve: Serve, samples_dir: Path, tmp_path: Path
) -> None:
    stand_in = serve(twilio(samples_dir))
    store = cartback.create_store("Acme Shoes")
    settings = tmp_path / "acme.yaml"
    settings.write_text(
        "country: US\n"
        "channels:\n"
        "  sms:\n"
        "    provider: twilio\n"
        f"    twilio: {{account_sid: ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, auth_token: {AUTH_TOKEN},"
        f" api_base_url: '{stand_in.url}'}}\n"
        "    from_number: '+14155550100'\n"
    )

    configured = cartback.run("store", "configure", "Acme Shoes", str(settings))
    shown = cartback.run("store", "show", store.id)
    assert "auth_token: <redacted>" in configured.stdout
    assert (
        "auth_token: <redacted>" in shown.stdout and "from_number: '+14155550100'" in shown.stdout
    )
    assert AUTH_TOKEN not in configured.stdout + shown.stdout

    sent = cartback.run("channels", "test", "Acme Shoes", "sms", "(415) 555-0142")
    assert sent.stdout.splitlines()[:2] == [
        "Sent. Provider: twilio",
        "  provider's id: SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ]
    [request] = stand_in.received
    form = dict(parse_qsl(request.body.decode()))
    assert (form["To"], form["From"]) == ("+14155550142", "+14155550100")
    assert form["Body"].startswith("Acme Shoes: a test message")

    # a later file adds a setting without undoing the SMS provider
    more = tmp_path / "more.yaml"
    more.write_text("channels:\n  sms: {rate_per_second: 2}\npolicy: {min_gap: 12h}\n")
    merged = cartback.run("store", "configure", "Acme Shoes", str(more)).stdout
    assert "rate_per_second: 2.0" in merged and "from_number: '+14155550100'" in merged
    assert "min_gap: 12h" in merged and "max_per_journey: 4" in merged

    refused = cartback.run("channels", "test", "Acme Shoes", "sms", UNSUBSCRIBED, check=False)
    assert refused.returncode == 1
    assert "The provider refused: twilio.21610" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_an_unconfigured_channel_and_bad_settings_say_what_to_do(
    cartback: Cartback, tmp_path: Path
) -> None:
    cartback.create_store("Acme Shoes")
    missing = cartback.run("channels", "test", "Acme Shoes", "whatsapp", "14155550142", check=False)
    assert missing.returncode == 2
    assert "no whatsapp provider configured" in missing.stderr
    assert "cartback store configure" in missing.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  sms: {provider: twilio, from_number: '+14155550100'}\n")
    refused = cartback.run("store", "configure", "Acme Shoes", str(bad), check=False)
    assert refused.returncode == 2
    assert "channels.sms" in refused.stderr and "twilio" in refused.stderr
    assert "Traceback" not in refused.stderr
    shown = cartback.run("store", "show", "Acme Shoes").stdout
    assert "sms: null" in shown  # nothing stored from the refused file


def test_the_email_channel_test_lands_in_the_outbox_without_smtp(cartback: Cartback) -> None:
    cartback.create_store("Acme Shoes")
    sent = cartback.run("channels", "test", "Acme Shoes", "email", "owner@example.com")
    assert sent.stdout.startswith("Sent. Provider: outbox")
    outbox = list((cartback.workdir / "outbox").rglob("*.eml"))
    assert len(outbox) == 1
    assert "owner@example.com" in outbox[0].read_text()
