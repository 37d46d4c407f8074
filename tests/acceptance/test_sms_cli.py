"""``cartback sms segments`` as a store owner runs it: no database, no settings, just the
text in and its encoding and cost out."""

from __future__ import annotations

import json
import os
import subprocess

from acceptance_harness import cli_command

GSM_163 = "Your cart is waiting. " * 7 + "Thank you"  # 163 GSM-7 characters
RUSSIAN = "Ваша корзина ждёт 🛒"


def sms_segments(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTBACK_")}
    return subprocess.run(
        [*cli_command(), "sms", "segments", *args],
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_a_long_gsm_message() -> None:
    human = sms_segments(GSM_163)
    as_json = sms_segments("--json", GSM_163)

    assert human.returncode == 0, human.stderr
    assert human.stdout == (
        "GSM-7 · 163 characters · 2 segments (153 per segment, 143 left in the last)\n"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "encoding": "GSM-7",
        "characters": 163,
        "units": 163,
        "segments": 2,
        "per_segment": 153,
        "remaining": 143,
        "non_gsm_characters": [],
    }


def test_a_ucs2_message_names_what_is_not_gsm() -> None:
    human = sms_segments(RUSSIAN)
    as_json = sms_segments(RUSSIAN, "--json")

    assert human.returncode == 0, human.stderr
    assert human.stdout == (
        "UCS-2 · 19 characters (20 UTF-16 units) · 1 segment (70 per segment, 50 left)\n"
        "Not in GSM-7: В а ш к о р з и н ж д ё and 2 more\n"
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "encoding": "UCS-2",
        "characters": 19,
        "units": 20,
        "segments": 1,
        "per_segment": 70,
        "remaining": 50,
        "non_gsm_characters": [
            "В",
            "а",
            "ш",
            "к",
            "о",
            "р",
            "з",
            "и",
            "н",
            "ж",
            "д",
            "ё",
            "т",
            "🛒",
        ],
    }


def test_help_explains_what_a_segment_costs() -> None:
    done = sms_segments("--help")

    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())  # however wide the terminal wraps it
    assert "Each segment is billed as one SMS" in words
    assert "160 characters" in words
    assert "--json" in done.stdout
