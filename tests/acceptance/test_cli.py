"""The command line as an operator meets it: help, migrations, stores, flows, and bad
settings answered with one clear message instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from acceptance_harness import Cartback
from sqlalchemy import text

from support.databases import backend

COMMANDS = ("run", "serve", "worker", "db", "store", "flow", "demo")

THREE_STEPS = """\
name: Quick nudges
entry:
  min_value: 1000
steps:
  - after: 15m
    template: reminder
    subject: "{{ first_name or 'Hi' }}, your cart is waiting"
  - after: 6h
    template: help
  - after: 2d
    template: last_chance
"""


def assert_friendly(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.strip(), "a failure must say what went wrong"


def test_help_lists_every_command_and_the_environment_settings(cartback: Cartback) -> None:
    done = cartback.run("--help")

    for command in COMMANDS:
        assert f" {command} " in done.stdout, f"{command} missing from --help"
    assert "CARTBACK_DATABASE_URL" in done.stdout


def test_worker_help_documents_the_settings_a_worker_reads(cartback: Cartback) -> None:
    done = cartback.run("worker", "--help")

    for variable in (
        "CARTBACK_DATABASE_URL",
        "CARTBACK_SMTP_URL",
        "CARTBACK_POLL_INTERVAL",
        "CARTBACK_WORKER_CONCURRENCY",
        "CARTBACK_WORKER_BATCH",
        "CARTBACK_LOG_LEVEL",
    ):
        assert variable in done.stdout, variable


def test_db_upgrade_on_a_fresh_sqlite_file_is_repeatable(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    cli = Cartback(f"sqlite:///{database}", tmp_path)

    first = cli.run("db", "upgrade")
    second = cli.run("db", "upgrade")

    assert database.exists()
    assert "up to date" in first.stdout
    assert "up to date" in second.stdout
    assert "Traceback" not in first.stderr + second.stderr


def test_store_create_prints_keys_once_and_keeps_only_a_hash(cartback: Cartback) -> None:
    done = cartback.run("store", "create", "Shop", "--json")

    body = json.loads(done.stdout)
    assert set(body) == {"id", "name", "api_key", "public_key"}
    assert body["name"] == "Shop"
    assert body["api_key"].startswith("cb_sk_") and len(body["api_key"]) > 20
    assert body["public_key"].startswith("cb_pk_")
    engine = cartback.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM api_keys")).all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert rows[0]._mapping["store_id"] == body["id"]
    assert not any(body["api_key"] in str(value) for value in rows[0])


def test_flow_show_before_any_flow_is_the_built_in_default(cartback: Cartback) -> None:
    cartback.create_store("Shop")

    shown = json.loads(cartback.run("flow", "show", "Shop", "--json").stdout)

    assert [(s["after"], s["channel"]) for s in shown["steps"]] == [
        ("1h", "email"),
        ("24h", "email"),
        ("72h", "email"),
    ]


def test_flow_set_then_show_round_trips_in_yaml_and_json(
    cartback: Cartback, tmp_path: Path
) -> None:
    store = cartback.create_store("Shop")
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(THREE_STEPS)

    saved = cartback.run("flow", "set", store.id, str(flow_file))
    as_yaml = yaml.safe_load(cartback.run("flow", "show", "Shop").stdout)
    as_json = json.loads(cartback.run("flow", "show", store.id, "--json").stdout)

    assert "Quick nudges" in saved.stdout and "3 steps" in saved.stdout
    assert as_yaml == as_json
    assert as_json["name"] == "Quick nudges"
    assert as_json["entry"]["min_value"] == 1000
    assert [(s["after"], s["template"]) for s in as_json["steps"]] == [
        ("15m", "reminder"),
        ("6h", "help"),
        ("2d", "last_chance"),
    ]
    assert as_json["steps"][0]["subject"] == "{{ first_name or 'Hi' }}, your cart is waiting"


def test_a_flow_with_a_bad_duration_is_refused_naming_the_field(
    cartback: Cartback, tmp_path: Path
) -> None:
    cartback.create_store("Shop")
    flow_file = tmp_path / "bad.yaml"
    flow_file.write_text("name: Broken\nsteps:\n  - after: soon\n")

    done = cartback.run("flow", "set", "Shop", str(flow_file), check=False)

    assert done.returncode != 0
    assert_friendly(done.stderr)
    assert "steps.0.after" in done.stderr
    assert "soon" in done.stderr
    # nothing was saved: the store still runs the built-in flow
    shown = json.loads(cartback.run("flow", "show", "Shop", "--json").stdout)
    assert [s["after"] for s in shown["steps"]] == ["1h", "24h", "72h"]


def test_flow_set_for_an_unknown_store_says_so(cartback: Cartback, tmp_path: Path) -> None:
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(THREE_STEPS)

    done = cartback.run("flow", "set", "Nope", str(flow_file), check=False)

    assert done.returncode != 0
    assert_friendly(done.stderr)
    assert "Nope" in done.stderr


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (("db", "upgrade"), "CARTBACK_DATABASE_URL", "mysql://x"),
        (("worker",), "CARTBACK_SMTP_URL", "http://x"),
        (("run",), "CARTBACK_SMTP_URL", "http://x"),
        (("worker",), "CARTBACK_POLL_INTERVAL", "soon"),
        (("serve",), "CARTBACK_LOG_LEVEL", "loud"),
        (("serve",), "CARTBACK_PORT", "99999"),
    ],
)
def test_a_bad_setting_is_named_with_exit_code_2_and_no_traceback(
    cartback: Cartback, command: tuple[str, ...], variable: str, value: str
) -> None:
    name = variable.removeprefix("CARTBACK_").lower()

    done = cartback.run(*command, check=False, timeout=60, **{name: value})

    assert done.returncode == 2, done.stderr
    assert variable in done.stderr
    assert_friendly(done.stderr)


def test_an_unreachable_postgresql_gets_a_friendly_message(tmp_path: Path) -> None:
    cli = Cartback("postgresql://postgres@127.0.0.1:1/cartback", tmp_path)

    done = cli.run("db", "upgrade", check=False, timeout=60)

    assert done.returncode == 2
    assert_friendly(done.stderr)
    assert "CARTBACK_DATABASE_URL" in done.stderr
    assert "Cannot use the database" in done.stderr


def test_a_worker_against_an_unmigrated_database_asks_for_db_upgrade(tmp_path: Path) -> None:
    if backend() != "sqlite":
        pytest.skip("an empty SQLite file is the cheap unmigrated database")
    cli = Cartback(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)

    done = cli.run("worker", check=False, timeout=60)

    assert done.returncode == 2
    assert_friendly(done.stderr)
    assert "cartback db upgrade" in done.stderr
