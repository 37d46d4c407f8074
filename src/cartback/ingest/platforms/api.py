"""Store platforms' webhooks in: signed, unauthenticated by API key, once per delivery.

The store is named in the path; its own settings (``platforms.<name>``) verify the request.
In order, every route:

1. loads the store: unknown, or the platform not connected to it -> 404;
2. reads the body, at most 2 MiB -> 413;
3. checks the signature over the raw body -> 401, nothing stored;
4. maps the payload to our events -> 400 (not JSON, a platform header missing) or 422
   (a field named in the problem);
5. applies them in one transaction and answers 200 ``{"status": ...}``: ``accepted``,
   ``duplicate`` (a redelivery), ``stale`` (an older version than the one applied) or
   ``ignored`` (a topic or status that changes nothing, with the reason in ``detail``).

=======================================  ==========================================
route                                    proof (store setting)
=======================================  ==========================================
POST /v1/webhooks/shopify/{store_id}     X-Shopify-Hmac-Sha256
                                         (``platforms.shopify.webhook_secret``)
POST /v1/webhooks/woocommerce/{store_id} X-WC-Webhook-Signature
                                         (``platforms.woocommerce.webhook_secret``);
                                         the unsigned ``webhook_id=<id>`` ping gets 200
POST /v1/webhooks/generic/{store_id}     HMAC header or bearer token
                                         (``platforms.generic``)
=======================================  ==========================================
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from cartback.core.services import services
from cartback.ingest.platforms import generic, shopify, woocommerce
from cartback.ingest.platforms._edge import (
    PROBLEMS,
    apply,
    load_store,
    not_connected,
    read_body,
    refused,
)

router = APIRouter(tags=["platforms"])


class WebhookAnswer(BaseModel):
    status: Literal["accepted", "duplicate", "stale", "ignored", "ping"]
    detail: str | None = None


@router.post(
    "/v1/webhooks/shopify/{store_id}",
    summary="Shopify webhooks: checkouts, orders, customers",
    response_model=WebhookAnswer,
    response_model_exclude_none=True,
    responses=PROBLEMS,
)
async def shopify_webhook(store_id: str, request: Request) -> dict[str, Any]:
    """``checkouts/create|update`` keep the cart (the newest ``updated_at`` wins),
    ``checkouts/delete`` clears it, ``orders/create|paid`` place the order and close its
    cart, ``customers/create|update`` identify the shopper. Deduplicated by
    ``X-Shopify-Webhook-Id``."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    config = store.settings.platforms.shopify
    if config is None:
        raise not_connected("Shopify", "shopify")
    body = await read_body(request)
    secrets = [s for s in (config.webhook_secret, config.previous_webhook_secret) if s]
    if not shopify.verify(secrets, body, request.headers):
        given = shopify.header(request.headers, "hmac-sha256") is not None
        raise refused("shopify", store, shopify.SIGNATURE, given)
    delivery = shopify.delivery(request.headers)
    mapped = shopify.map_webhook(delivery, body, now=svc.clock.now())
    return await apply(svc, store, mapped, delivery.topic)


@router.post(
    "/v1/webhooks/woocommerce/{store_id}",
    summary="WooCommerce order webhooks: created, updated, deleted",
    response_model=WebhookAnswer,
    response_model_exclude_none=True,
    responses=PROBLEMS,
)
async def woocommerce_webhook(store_id: str, request: Request) -> dict[str, Any]:
    """Pending, failed, on-hold and checkout-draft orders are open carts; processing and
    completed ones placed orders; ``order.deleted`` clears the cart. The activation ping
    (``webhook_id=<id>``, unsigned) is answered 200 and changes nothing."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    config = store.settings.platforms.woocommerce
    if config is None:
        raise not_connected("WooCommerce", "woocommerce")
    body = await read_body(request)
    if woocommerce.is_ping(body, request.headers):
        return {"status": "ping"}
    if not woocommerce.verify(config.webhook_secret, body, request.headers):
        given = woocommerce.SIGNATURE.lower() in request.headers
        raise refused("woocommerce", store, woocommerce.SIGNATURE, given)
    topic = woocommerce.topic(request.headers)
    mapped = woocommerce.map_webhook(topic, body, now=svc.clock.now())
    return await apply(svc, store, mapped, topic)


@router.post(
    "/v1/webhooks/generic/{store_id}",
    summary="Any other platform: fields mapped by the store's settings",
    response_model=WebhookAnswer,
    response_model_exclude_none=True,
    responses=PROBLEMS,
)
async def generic_webhook(store_id: str, request: Request) -> dict[str, Any]:
    """The payload's cart, contact and order fields are where ``platforms.generic`` says;
    the request is signed with an HMAC-SHA256 header or carries a bearer token."""
    svc = services(request)
    store = await run_in_threadpool(load_store, svc, store_id)
    config = store.settings.platforms.generic
    if config is None:
        raise not_connected("The generic webhook", "generic")
    body = await read_body(request)
    if not generic.verify(config, body, request.headers):
        header = "Authorization" if config.auth == "bearer" else config.signature_header
        raise refused("generic", store, header, header.lower() in request.headers)
    mapped = generic.map_webhook(
        config, body, request.headers, currency=store.settings.currency, now=svc.clock.now()
    )
    return await apply(svc, store, mapped, None)
