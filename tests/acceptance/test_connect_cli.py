"""``cartback connect shopify|woocommerce`` as a store owner runs it: the webhook URL,
topics and signing secret to paste into the platform, the secret kept (redacted) in the
store's settings, and the real server then taking the platforms' signed webhooks."""

from __future__ import annotations

import json

import httpx
import pytest
from acceptance_harness import Cartback

from support.platform_samples import raw_request, woo_headers

pytestmark = pytest.mark.slow

BASE = "https://recover.example.com"
SHOPIFY_TOPICS = [
    "checkouts/create",
    "checkouts/update",
    "checkouts/delete",
    "orders/create",
    "orders/paid",
    "customers/create",
    "customers/update",
]


def connect(cartback: Cartback, *args: str) -> dict[str, object]:
    out: dict[str, object] = json.loads(
        cartback.run("connect", *args, "--json", base_url=BASE).stdout
    )
    return out


def test_connect_prints_what_to_set_and_the_server_takes_the_signed_webhooks(
    cartback: Cartback,
) -> None:
    store = cartback.create_store("Acme Shoes")

    woo = connect(cartback, "woocommerce", "Acme Shoes")
    shop = connect(cartback, "shopify", store.id, "--secret", "hush")

    assert woo["url"] == f"{BASE}/v1/webhooks/woocommerce/{store.id}"
    assert woo["topics"] == ["order.created", "order.updated", "order.deleted"]
    secret = woo["secret"]
    assert isinstance(secret, str) and len(secret) >= 40  # secrets.token_urlsafe(32)
    assert shop == {
        "url": f"{BASE}/v1/webhooks/shopify/{store.id}",
        "topics": SHOPIFY_TOPICS,
        "secret": "hush",
    }
    assert connect(cartback, "woocommerce", "Acme Shoes")["secret"] == secret  # kept
    shown = cartback.run("store", "show", store.id).stdout
    assert shown.count("webhook_secret: <redacted>") == 2
    assert secret not in shown and "hush" not in shown

    server = cartback.serve()
    # the Shopify sample request, byte for byte, signed with the secret given to connect
    request = raw_request("shopify_checkouts_create_request")
    to_shopify = httpx.post(
        f"{server.base_url}/v1/webhooks/shopify/{store.id}",
        content=request.body,
        headers=request.headers,
        timeout=30,
    )
    # the WooCommerce sample body, signed with the secret connect generated...
    woo_url = f"{server.base_url}/v1/webhooks/woocommerce/{store.id}"
    body = raw_request("woocommerce_order_created_request").body
    signed = httpx.post(
        woo_url, content=body, headers=woo_headers("order.created", body, secret=secret), timeout=30
    )
    # ...and as the sample was signed, with another secret
    forged = httpx.post(
        woo_url,
        content=body,
        headers=raw_request("woocommerce_order_created_request").headers,
        timeout=30,
    )

    assert (to_shopify.status_code, to_shopify.json()) == (200, {"status": "accepted"})
    assert (signed.status_code, signed.json()) == (200, {"status": "accepted"})
    assert (forged.status_code, forged.json()["code"]) == (401, "invalid_signature")
    assert server.cart(store, "123123123")["status"] == "active"


def test_connect_speaks_to_people_too_and_replaces_the_secret_on_request(
    cartback: Cartback,
) -> None:
    store = cartback.create_store("Acme Shoes")

    done = cartback.run("connect", "woocommerce", "Acme Shoes", "--secret", "s3cret-from-woo")

    assert done.stdout.splitlines()[:4] == [
        f"WooCommerce webhooks for store {store.id}:",
        f"  URL:     http://127.0.0.1:8000/v1/webhooks/woocommerce/{store.id}",
        "  topics:  order.created, order.updated, order.deleted",
        "  secret:  s3cret-from-woo",
    ]
    assert "public https:// URL" in done.stderr  # the default base URL is no public address
    assert connect(cartback, "woocommerce", store.id, "--secret", "newer")["secret"] == "newer"

    unknown = cartback.run("connect", "shopify", "No Such Store", check=False)
    assert unknown.returncode == 2
    assert "No store with id or name 'No Such Store'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
