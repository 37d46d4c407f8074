"""The ``cartback`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from cartback.cli.connect import connect_app
from cartback.errors import CartbackError, ConfigError, ProblemError
from cartback.settings import Settings, load_settings

T = TypeVar("T")

app = typer.Typer(
    help="cartback: self-hosted abandoned-cart recovery.\n\n"
    "Every option can also be set in the environment as CARTBACK_<NAME> "
    "(e.g. CARTBACK_DATABASE_URL).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
store_app = typer.Typer(help="Stores (tenants) and their keys.", no_args_is_help=True)
flow_app = typer.Typer(help="The store's recovery journey.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(store_app, name="store")
app.add_typer(flow_app, name="flow")
app.add_typer(connect_app, name="connect")

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CARTBACK_DATABASE_URL",
        show_envvar=True,
        help="sqlite:///./cartback.db (default) or postgresql://user@host/db",
    ),
]
SmtpOpt = Annotated[
    str | None,
    typer.Option(
        "--smtp-url",
        envvar="CARTBACK_SMTP_URL",
        show_envvar=True,
        help="smtp://user:pass@host:587?starttls=1; unset = the embedded outbox",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="CARTBACK_BASE_URL",
        show_envvar=True,
        help="Public URL of this server, for links in messages",
    ),
]
SecretOpt = Annotated[
    str | None,
    typer.Option(
        "--secret-key",
        envvar="CARTBACK_SECRET_KEY",
        show_envvar=True,
        help="Signs link tokens; unset = generated once and kept in the database",
    ),
]
HostOpt = Annotated[str | None, typer.Option("--host", envvar="CARTBACK_HOST", show_envvar=True)]
PortOpt = Annotated[int | None, typer.Option("--port", envvar="CARTBACK_PORT", show_envvar=True)]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        envvar="CARTBACK_WORKER_CONCURRENCY",
        show_envvar=True,
        help="Jobs a worker runs at once",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        envvar="CARTBACK_WORKER_BATCH",
        show_envvar=True,
        help="Most due jobs a worker claims at once (default 50)",
    ),
]
PollOpt = Annotated[
    float | None,
    typer.Option(
        "--poll-interval",
        envvar="CARTBACK_POLL_INTERVAL",
        show_envvar=True,
        help="Seconds an idle worker waits before looking for due work again (default 1)",
    ),
]
OutboxOpt = Annotated[
    str | None,
    typer.Option(
        "--outbox-dir",
        envvar="CARTBACK_OUTBOX_DIR",
        show_envvar=True,
        help="Where the embedded outbox keeps captured .eml files (default ./cartback-outbox)",
    ),
]
LogLevelOpt = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        envvar="CARTBACK_LOG_LEVEL",
        show_envvar=True,
        help="DEBUG, INFO (default), WARNING or ERROR; JSON lines on stderr",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Known failures print one clear message and what to do, never a traceback."""
    try:
        yield
    except ConfigError as exc:
        raise fail(f"{exc}\nSee `cartback --help` for every setting.") from None
    except ProblemError as exc:
        raise fail(f"Error: {exc.detail}") from None
    except ValidationError as exc:
        lines = "\n".join(
            f"  {'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"Invalid input:\n{lines}") from None
    except OperationalError as exc:
        raise fail(
            f"Cannot use the database: {exc.orig}\n"
            "Check CARTBACK_DATABASE_URL and that the database server is running."
        ) from None
    except CartbackError as exc:
        raise fail(f"Error: {exc}") from None


def settings_from(**options: Any) -> Settings:
    return load_settings(**options)


def _with_session(settings: Settings, fn: Callable[[Any, Any], T], *, migrate: bool = True) -> T:
    from cartback.core.clock import SystemClock
    from cartback.core.db import make_engine, make_sessionmaker, transaction
    from cartback.migrations import upgrade

    if migrate:
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            return fn(session, SystemClock().now())
    finally:
        engine.dispose()


def _serve(*, api: bool, worker: bool, migrate: bool, options: dict[str, Any]) -> None:
    """Run the API and/or the worker with these settings (the command's own parameters,
    named as the settings they set)."""
    with friendly_errors():
        settings = settings_from(**options)
        from cartback.cli.serve import serve_forever

        serve_forever(settings, api=api, worker=worker, migrate=migrate)


@app.command()
def run(
    database_url: DatabaseOpt = None,
    smtp_url: SmtpOpt = None,
    base_url: BaseUrlOpt = None,
    secret_key: SecretOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    worker_concurrency: ConcurrencyOpt = None,
    worker_batch: BatchOpt = None,
    poll_interval: PollOpt = None,
    outbox_dir: OutboxOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """API and worker in one process: the zero-setup default (SQLite, migrations applied,
    email captured in the outbox unless an SMTP server is set)."""
    _serve(api=True, worker=True, migrate=True, options=locals())


@app.command()
def serve(
    database_url: DatabaseOpt = None,
    smtp_url: SmtpOpt = None,
    base_url: BaseUrlOpt = None,
    secret_key: SecretOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    outbox_dir: OutboxOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """The HTTP API only; run any number of these against one PostgreSQL."""
    _serve(api=True, worker=False, migrate=False, options=locals())


@app.command()
def worker(
    database_url: DatabaseOpt = None,
    smtp_url: SmtpOpt = None,
    base_url: BaseUrlOpt = None,
    secret_key: SecretOpt = None,
    worker_concurrency: ConcurrencyOpt = None,
    worker_batch: BatchOpt = None,
    poll_interval: PollOpt = None,
    outbox_dir: OutboxOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """A worker only: abandonment checks, journey steps, sends, maintenance."""
    _serve(api=False, worker=True, migrate=False, options=locals())


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOpt = None) -> None:
    """Apply the database migrations (safe to run again)."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.migrations import upgrade

        upgrade(settings.database_url)
        typer.echo("Database is up to date.")


@store_app.command("create")
def store_create(
    name: Annotated[str, typer.Argument(help="The store's name, shown in emails")],
    sender_email: Annotated[str | None, typer.Option(help="From address of reminders")] = None,
    url: Annotated[str | None, typer.Option(help="The store's website")] = None,
    currency: Annotated[str | None, typer.Option(help="Default ISO 4217 currency")] = None,
    locale: Annotated[str | None, typer.Option(help="Default language, e.g. en, ru, lt")] = None,
    abandon_after: Annotated[
        str | None, typer.Option(help="Idle time before a cart is abandoned, e.g. 30m")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Create a store; prints its id, its secret API key (shown once) and its public key."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.stores.schemas import StoreSettings
        from cartback.stores.service import create_store

        options = {
            k: v
            for k, v in {
                "sender_email": sender_email,
                "url": url,
                "currency": currency,
                "locale": locale,
                "abandon_after": abandon_after,
            }.items()
            if v is not None
        }
        store_settings = StoreSettings.model_validate(options)

        def make(session: Any, now: Any) -> dict[str, str]:
            created = create_store(session, name=name, now=now, settings=store_settings)
            return {
                "id": created.store.id,
                "name": name,
                "api_key": created.api_key,
                "public_key": created.store.public_key,
            }

        out = _with_session(settings, make)
        if as_json:
            typer.echo(json.dumps(out))
            return
        typer.echo(f"Store created: {out['name']}")
        typer.echo(f"  id:         {out['id']}")
        typer.echo(f"  API key:    {out['api_key']}   (secret; shown only now)")
        typer.echo(f"  public key: {out['public_key']}")


@store_app.command("configure")
def store_configure(
    store: Annotated[str, typer.Argument(help="Store id or name")],
    file: Annotated[
        Path,
        typer.Argument(
            help="Settings to change, YAML or JSON (merged into the current ones)",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    database_url: DatabaseOpt = None,
) -> None:
    """Change a store's settings: sender, channels and their providers, contact policy,
    costs. FILE is merged into the current settings key by key (``channels: {sms: ...}``
    leaves WhatsApp as it is); ``null`` removes a setting. Prints the result with every
    credential redacted."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.stores.service import find_store, update_settings

        try:
            changes = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise fail(f"{file} is not valid YAML or JSON: {exc}") from None
        if not isinstance(changes, dict):
            raise fail(f"{file} must hold a mapping of settings, e.g. 'locale: lt'")

        def save(session: Any, now: Any) -> dict[str, Any]:
            found = find_store(session, store)
            merged = _deep_merge(found.settings, changes)
            return update_settings(session, found, merged).redacted()

        typer.echo(yaml.safe_dump(_with_session(settings, save), sort_keys=False))


def _deep_merge(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


@store_app.command("show")
def store_show(
    store: Annotated[str, typer.Argument(help="Store id or name")],
    database_url: DatabaseOpt = None,
) -> None:
    """Print a store's settings (credentials redacted)."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.stores.service import find_store, store_settings

        def read(session: Any, now: Any) -> dict[str, Any]:
            found = find_store(session, store)
            return {"id": found.id, "name": found.name, **store_settings(found).redacted()}

        typer.echo(yaml.safe_dump(_with_session(settings, read), sort_keys=False))


@flow_app.command("set")
def flow_set(
    store: Annotated[str, typer.Argument(help="Store id or name")],
    file: Annotated[
        Path,
        typer.Argument(
            help="Flow definition, YAML or JSON", exists=True, dir_okay=False, readable=True
        ),
    ],
    database_url: DatabaseOpt = None,
) -> None:
    """Load a flow from a file; it becomes the store's newest version."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.flows.definition import FlowDefinition
        from cartback.flows.service import set_flow
        from cartback.stores.service import find_store

        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise fail(f"{file} is not valid YAML or JSON: {exc}") from None
        definition = FlowDefinition.model_validate(raw)

        def save(session: Any, now: Any) -> int:
            found = find_store(session, store)
            return set_flow(session, store_id=found.id, definition=definition, now=now).version

        version = _with_session(settings, save)
        typer.echo(
            f"Flow '{definition.name}' saved as version {version} ({len(definition.steps)} steps)."
        )


@flow_app.command("show")
def flow_show(
    store: Annotated[str, typer.Argument(help="Store id or name")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML")] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Print the store's current flow (the built-in default until one is set)."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.flows.service import current_flow
        from cartback.stores.service import find_store

        def load(session: Any, now: Any) -> dict[str, Any]:
            flow = current_flow(session, store_id=find_store(session, store).id, now=now)
            return {"version": flow.version, **flow.definition}

        data = _with_session(settings, load)
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the outbox and API", min=1, max=65535)] = 8000,
    shoppers: Annotated[int, typer.Option(help="Simulated shoppers", min=1, max=2000)] = 40,
    speed: Annotated[
        float,
        typer.Option(help="Clock speed: simulated seconds per real second", min=1.0),
    ] = 5400.0,
    database: Annotated[
        Path,
        typer.Option(
            help="SQLite file for the demo, deleted and made afresh; the emails go in "
            "<name>-outbox/ beside it",
            dir_okay=False,
        ),
    ] = Path("cartback-demo.db"),
    seed: Annotated[int, typer.Option(help="Same seed, same shoppers and choices")] = 7,
    keep_serving: Annotated[
        bool, typer.Option("--keep-serving/--exit", help="Keep the outbox open after the summary")
    ] = True,
) -> None:
    """A demo store with simulated shoppers on a fast clock: carts abandon, reminders
    land in the outbox, some shoppers come back and buy, and a summary is printed."""
    with friendly_errors():
        from cartback.demo.run import run_demo

        run_demo(
            port=port,
            shoppers=shoppers,
            speed=speed,
            database=database,
            keep_serving=keep_serving,
            seed=seed,
        )


sms_app = typer.Typer(
    help="SMS length and cost: providers bill every segment as one message.",
    no_args_is_help=True,
)
app.add_typer(sms_app, name="sms")
channels_app = typer.Typer(help="The store's channels and providers.", no_args_is_help=True)
app.add_typer(channels_app, name="channels")


@channels_app.command("test")
def channels_test(
    store: Annotated[str, typer.Argument(help="Store id or name")],
    channel: Annotated[str, typer.Argument(help="email, sms, whatsapp, telegram or push")],
    to: Annotated[
        str,
        typer.Argument(
            help="Email address, phone number, Telegram chat id, or (push) the contact's email"
        ),
    ],
    template: Annotated[
        str, typer.Option(help="WhatsApp: an approved template without parameters")
    ] = "hello_world",
    language: Annotated[str, typer.Option(help="WhatsApp: the template's language")] = "en_US",
    database_url: DatabaseOpt = None,
) -> None:
    """Send one test message through the store's own provider and print its answer."""
    with friendly_errors():
        settings = settings_from(database_url=database_url)
        from cartback.app import build_runtime
        from cartback.channels import ChannelError
        from cartback.providers import NotConfigured, send_test
        from cartback.stores.service import find_store, store_settings

        def read(session: Any, now: Any) -> tuple[str, str, Any, list[Any]]:
            found = find_store(session, store)
            return found.id, found.name, store_settings(found), _push_targets(session, found.id, to)

        store_id, name, config, targets = _with_session(settings, read)
        runtime = build_runtime(settings, migrate=False)
        try:
            result = send_test(
                runtime.providers,
                store_id=store_id,
                store_name=name,
                settings=config,
                channel=channel,
                to=to,
                push_targets=targets,
                whatsapp_template=template,
                whatsapp_language=language,
            )
        except NotConfigured:
            raise fail(
                f"The store has no {channel} provider configured. Add it under 'channels' "
                f"with `cartback store configure {store} FILE` (see the README)."
            ) from None
        except ChannelError as exc:
            raise fail(f"The provider refused: {exc.code}: {exc.reason}", code=1) from None
        finally:
            runtime.close()
        typer.echo(f"Sent. Provider: {result.provider}")
        typer.echo(f"  provider's id: {result.provider_message_id or '(none given)'}")
        if result.detail:
            typer.echo(f"  detail:        {result.detail}")


def _push_targets(session: Any, store_id: str, email: str) -> list[tuple[str, str, Any]]:
    from sqlalchemy import select

    from cartback.contacts.models import Contact, PushSubscription

    rows = session.execute(
        select(PushSubscription.kind, PushSubscription.endpoint, PushSubscription.keys)
        .join(Contact, Contact.id == PushSubscription.contact_id)
        .where(PushSubscription.store_id == store_id, Contact.email == email.strip().lower())
    ).all()
    return [tuple(row) for row in rows]


@sms_app.command("segments")
def sms_segments(
    text: Annotated[str, typer.Argument(help="The message, exactly as it will be sent")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """How many segments TEXT takes, and in which encoding.

    Each segment is billed as one SMS (Twilio prices per segment, by country). In
    GSM-7 one segment holds 160 characters, and a longer message goes as parts of
    153; € [ ] { } ^ | ~ \\ count as 2. One character outside GSM-7 (Cyrillic,
    Persian, ą č ę, oʻ, curly quotes, any emoji) sends the whole message as UCS-2:
    70 in one segment, else 67 per part, emoji counting 2. So a 100-character
    message costs 1 segment in GSM-7 but 2 in UCS-2.
    """
    from cartback.content.sms import encode_info, non_gsm_characters

    info = encode_info(text)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "encoding": info.encoding,
                    "characters": info.characters,
                    "units": info.units,
                    "segments": info.segments,
                    "per_segment": info.per_segment,
                    "remaining": info.remaining,
                    "non_gsm_characters": non_gsm_characters(text),
                },
                ensure_ascii=False,
            )
        )
        return
    unit = "septets" if info.encoding == "GSM-7" else "UTF-16 units"
    length = f"{info.characters} character{'' if info.characters == 1 else 's'}"
    if info.units != info.characters:
        length += f" ({info.units} {unit})"
    if info.segments == 1:
        cost = f"1 segment ({info.per_segment} per segment, {info.remaining} left)"
    else:
        cost = (
            f"{info.segments} segments ({info.per_segment} per segment, "
            f"{info.remaining} left in the last)"
        )
    typer.echo(f"{info.encoding} · {length} · {cost}")
    if info.encoding == "UCS-2":
        # Invisible look-alikes (no-break space, zero-width joiner) shown escaped.
        shown = [
            c if c.isprintable() and not c.isspace() else repr(c) for c in non_gsm_characters(text)
        ]
        more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
        typer.echo(f"Not in GSM-7: {' '.join(shown[:12])}{more}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
