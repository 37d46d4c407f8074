"""``cartback connect shopify|woocommerce STORE``: what to set in the platform's admin."""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

import typer

connect_app = typer.Typer(
    help="Connect a store's platform: the webhook URL, topics and signing secret to set there.",
    no_args_is_help=True,
)

StoreArg = Annotated[str, typer.Argument(help="Store id or name")]
SecretOpt = Annotated[
    str | None,
    typer.Option(
        "--secret",
        help="The signing secret the platform gave you; else one is generated (or the one "
        "already set is kept)",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts: url, topics, secret")
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CARTBACK_DATABASE_URL",
        show_envvar=True,
        help="sqlite:///./cartback.db (default) or postgresql://user@host/db",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="CARTBACK_BASE_URL",
        show_envvar=True,
        help="Public URL of this server: the platform posts its webhooks there",
    ),
]


@connect_app.command("shopify")
def connect_shopify(
    store: StoreArg,
    secret: SecretOpt = None,
    as_json: JsonOpt = False,
    database_url: DatabaseOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Shopify: subscribe these topics (JSON) to this URL.

    Shopify signs with the app's client secret (app webhooks) or with the key shown under
    Settings > Notifications > Webhooks (webhooks made in the admin): give it as --secret.
    """
    _connect(
        "shopify",
        "Shopify",
        store,
        secret=secret,
        as_json=as_json,
        options={"database_url": database_url, "base_url": base_url},
        hint="Shopify signs with your app's client secret, or with the key shown under "
        "Settings > Notifications > Webhooks: if it is not the secret above, run this again "
        "with --secret <that key>.",
    )


@connect_app.command("woocommerce")
def connect_woocommerce(
    store: StoreArg,
    secret: SecretOpt = None,
    as_json: JsonOpt = False,
    database_url: DatabaseOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """WooCommerce: add one webhook per topic (WooCommerce > Settings > Advanced >
    Webhooks), each with this delivery URL and this secret, API version WP REST API v3."""
    _connect(
        "woocommerce",
        "WooCommerce",
        store,
        secret=secret,
        as_json=as_json,
        options={"database_url": database_url, "base_url": base_url},
        hint="In WooCommerce > Settings > Advanced > Webhooks, add one webhook per topic "
        "(status Active, API version WP REST API v3) with this delivery URL and secret.",
    )


def _connect(
    key: str,
    name: str,
    store: str,
    *,
    secret: str | None,
    as_json: bool,
    options: dict[str, Any],
    hint: str,
) -> None:
    # imported here: cli.main imports this module to register it, and the CLI starts fast
    from cartback.cli.main import _with_session, friendly_errors, settings_from
    from cartback.ingest.platforms import shopify, woocommerce

    topics = list(shopify.TOPICS if key == "shopify" else woocommerce.TOPICS)

    with friendly_errors():
        settings = settings_from(**options)
        from cartback.stores.service import find_store, update_settings

        def save(session: Any, now: Any) -> tuple[str, str]:
            found = find_store(session, store)
            platforms = dict(found.settings.get("platforms") or {})
            current = dict(platforms.get(key) or {})
            chosen = secret or current.get("webhook_secret") or secrets.token_urlsafe(32)
            platforms[key] = {**current, "webhook_secret": chosen}
            update_settings(session, found, {"platforms": platforms})
            return found.id, chosen

        store_id, chosen = _with_session(settings, save)
    url = f"{settings.base_url}/v1/webhooks/{key}/{store_id}"
    if as_json:
        typer.echo(json.dumps({"url": url, "topics": topics, "secret": chosen}))
        return
    typer.echo(f"{name} webhooks for store {store_id}:")
    typer.echo(f"  URL:     {url}")
    typer.echo(f"  topics:  {', '.join(topics)}")
    typer.echo(f"  secret:  {chosen}")
    typer.echo(hint)
    if not url.startswith("https://"):
        typer.secho(
            f"Note: {name} delivers only to a public https:// URL; set CARTBACK_BASE_URL "
            "(or --base-url) to this server's public address.",
            fg=typer.colors.YELLOW,
            err=True,
        )
