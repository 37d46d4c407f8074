"""The platform mappings without a database: signatures against the documented vectors,
each sample mapped to exactly our events, money to minor units, ids above 2^53 kept exact,
versions ordered, the generic webhook's paths — and no payload ever anything but a 4xx."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cartback.errors import ProblemError
from cartback.ingest.platforms import generic, shopify, woocommerce
from cartback.ingest.platforms._common import Mapped, Ref, load_json, to_minor
from cartback.ingest.schemas import CartUpdated, OrderPlaced
from cartback.stores.schemas import JSON_PATH, GenericWebhookSettings
from support.platform_samples import (
    SHOPIFY_SECRET,
    WOO_SECRET,
    compact,
    raw_request,
    sample,
    sample_bytes,
)
from support.platform_world import generic_settings, readme_platforms

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
VECTOR_BODY = b'{"id":1}'
VECTOR = "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="  # integrations.md, key "hush"


def delivery(topic: str, triggered_at: datetime | None = None) -> shopify.Delivery:
    return shopify.Delivery(topic, "w-1", triggered_at)


# --- signatures ----------------------------------------------------------------------------


def test_shopify_and_woocommerce_sign_the_documented_vector() -> None:
    assert shopify.verify(["hush"], VECTOR_BODY, {"X-Shopify-Hmac-Sha256": VECTOR})
    assert shopify.verify(["hush"], VECTOR_BODY, {"shopify-hmac-sha256": VECTOR})  # Events
    assert woocommerce.verify("hush", VECTOR_BODY, {"x-wc-webhook-signature": VECTOR})
    assert not shopify.verify(["hush"], b'{"id":2}', {"X-Shopify-Hmac-Sha256": VECTOR})
    assert not shopify.verify(["hush"], VECTOR_BODY, {})


def test_the_signed_request_samples_verify_only_with_their_secret() -> None:
    shop, woo = (
        raw_request("shopify_checkouts_create_request"),
        raw_request("woocommerce_order_created_request"),
    )

    assert shopify.verify([SHOPIFY_SECRET], shop.body, shop.headers)
    assert shopify.verify(["new-secret", SHOPIFY_SECRET], shop.body, shop.headers)  # rotating
    assert not shopify.verify(["new-secret"], shop.body, shop.headers)
    assert woocommerce.verify(WOO_SECRET, woo.body, woo.headers)
    assert not woocommerce.verify(WOO_SECRET, woo.body + b" ", woo.headers)


def test_woocommerce_signs_with_its_secret_html_decoded_like_wordpress() -> None:
    assert woocommerce.signing_key("a&amp;b&#039;c&lt;") == "a&b'c<"
    assert woocommerce.signing_key("&eacute;") == "&eacute;"  # not one WordPress undoes


def test_only_the_unsigned_form_body_is_the_woocommerce_ping() -> None:
    ping = raw_request("woocommerce_webhook_ping_request")

    assert woocommerce.is_ping(ping.body, ping.headers)
    assert not woocommerce.is_ping(b"webhook_id=12&x=1", {})
    assert not woocommerce.is_ping(ping.body, {"X-WC-Webhook-Signature": "x"})


# --- JSON and money ------------------------------------------------------------------------


def test_ids_above_2_53_stay_exact_and_no_amount_is_a_float() -> None:
    data = load_json(b'{"id": 981820079255243537, "rate": 0.06, "price": "19.99"}')

    assert data["id"] == 981820079255243537
    assert data["rate"] == Decimal("0.06") and isinstance(data["rate"], Decimal)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{", "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b'{"a": Infinity}', "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),
        (b'"a string"', "invalid_shape"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_4xx(body: bytes, code: str) -> None:
    with pytest.raises(ProblemError) as caught:
        load_json(body)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("421.88", "USD", 42188),
        ("0.005", "USD", 1),  # half a cent rounds up
        ("1000", "JPY", 1000),  # no minor unit
        ("1.234", "KWD", 1234),  # three decimals
        ("19.99", "EUR", 1999),
    ],
)
def test_decimal_strings_become_minor_units_of_their_currency(
    amount: str, currency: str, minor: int
) -> None:
    assert to_minor(Decimal(amount), currency, "price") == minor


def test_an_amount_too_large_to_store_is_a_422() -> None:
    with pytest.raises(ProblemError) as caught:
        to_minor(Decimal("1e40"), "USD", "line_items[0].price")
    assert str(caught.value) == "line_items[0].price: 1E+40 is too large an amount"


# --- Shopify ---------------------------------------------------------------------------------


def test_the_shopify_request_sample_maps_to_a_checkout_cart() -> None:
    request = raw_request("shopify_checkouts_create_request")

    mapped = shopify.map_webhook(shopify.delivery(request.headers), request.body, now=NOW)

    assert isinstance(mapped.event, CartUpdated)
    assert mapped.event.id == "shopify:545ebdd4-b7be-4d3d-b14e-54aa78e0e0f9"
    assert (mapped.event.cart.id, mapped.event.cart.currency) == ("123123123", "USD")
    assert [(i.sku, i.unit_price, i.quantity) for i in mapped.event.cart.items] == [
        ("IPOD2008PINK", 19900, 1),
        ("IPOD2008PINK", 19900, 1),
    ]
    assert mapped.event.contact is not None
    assert mapped.event.contact.external_id == "603851970716743426"
    assert mapped.links == ("shopify:cart_token:eeafa272cebfd4b22385bc4b645e762c",)
    assert mapped.started is not None and mapped.started.cart.id == "123123123"


def test_a_shopify_order_names_its_cart_by_checkout_token_then_cart_token_then_id() -> None:
    mapped = shopify.map_webhook(
        delivery("orders/create"), sample_bytes("shopify_orders_create"), now=NOW
    )

    assert isinstance(mapped.event, OrderPlaced)
    assert mapped.event.order.model_dump() == {
        "id": "450789469",
        "cart_id": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "total": 59894,
        "currency": "USD",
        "discount_codes": ["TENOFF"],
    }
    assert mapped.refs == (
        Ref("bd5a8aa1ecd019dd3520ff791ee3a24c"),
        Ref("shopify:cart_token:68778783ad298f1c80c3bafcddeea02f", link=True),
        Ref("68778783ad298f1c80c3bafcddeea02f"),
        Ref("shopify:checkout:901414060", link=True),
    )


def test_the_shopify_delete_sample_names_the_checkout_by_cart_token_and_exact_id() -> None:
    mapped = shopify.map_webhook(
        delivery("checkouts/delete", NOW), sample_bytes("shopify_checkouts_delete"), now=NOW
    )

    assert mapped.event is not None and mapped.event.type == "cart.cleared"
    assert mapped.event.occurred_at == NOW
    assert mapped.refs[-1] == Ref("shopify:checkout:981820079255243537", link=True)


def test_a_completed_checkout_is_left_to_its_order() -> None:
    checkout = {**sample("shopify_checkouts_create"), "completed_at": "2022-01-01T00:10:00Z"}

    mapped = shopify.map_webhook(delivery("checkouts/update"), compact(checkout), now=NOW)

    assert mapped == Mapped.ignored(
        "shopify", "the checkout is completed: its order closes the cart"
    )


@pytest.mark.parametrize(
    ("updated", "triggered", "expected"),
    [
        ("2026-01-05T08:00:00Z", None, datetime(2026, 1, 5, 8, 0, tzinfo=UTC)),
        (
            "2026-01-05T08:00:00Z",
            datetime(2026, 1, 5, 8, 0, 0, 250000, tzinfo=UTC),
            datetime(2026, 1, 5, 8, 0, 0, 250000, tzinfo=UTC),
        ),
        (
            "2026-01-05T08:00:00Z",  # triggered minutes later: refined, but below a second
            datetime(2026, 1, 5, 8, 5, tzinfo=UTC),
            datetime(2026, 1, 5, 8, 0, 0, 999999, tzinfo=UTC),
        ),
        ("2026-01-05T10:00:00Z", None, NOW),  # a clock ahead of ours is not the future
    ],
)
def test_a_checkouts_version_is_its_updated_at_refined_by_the_trigger_time(
    updated: str, triggered: datetime | None, expected: datetime
) -> None:
    checkout = {**sample("shopify_checkouts_create"), "updated_at": updated}

    mapped = shopify.map_webhook(
        delivery("checkouts/update", triggered), compact(checkout), now=NOW
    )

    assert mapped.event is not None and mapped.event.occurred_at == expected


# --- WooCommerce -----------------------------------------------------------------------------


def test_the_woocommerce_samples_map_to_one_order_with_distinct_event_ids() -> None:
    created = woocommerce.map_webhook(
        "order.created", sample_bytes("woocommerce_order_created"), now=NOW
    )
    updated = woocommerce.map_webhook(
        "order.updated", sample_bytes("woocommerce_order_updated"), now=NOW
    )

    assert isinstance(created.event, OrderPlaced) and isinstance(updated.event, OrderPlaced)
    assert created.event.order == updated.event.order
    assert created.event.order.total == 2935
    assert created.event.occurred_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)  # date_paid
    assert created.event.id != updated.event.id
    assert created.event.id.startswith("woocommerce:727:")


def test_a_pending_woocommerce_order_is_the_cart_priced_from_its_line_subtotals() -> None:
    order = {**sample("woocommerce_order_created"), "status": "pending"}

    mapped = woocommerce.map_webhook("order.updated", compact(order), now=NOW)

    assert isinstance(mapped.event, CartUpdated)
    assert [(i.sku, i.name, i.unit_price, i.quantity) for i in mapped.event.cart.items] == [
        ("93", "Woo Single #1", 300, 2),
        ("Bar3", "Ship Your Idea – Color: Black, Size: M Test", 1200, 1),
    ]
    assert mapped.event.occurred_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)


# --- the generic webhook ---------------------------------------------------------------------


def test_paths_reach_fields_elements_and_every_element() -> None:
    doc = {"cart": {"lines": [{"ref": "TEE-1", "n": 1}, {"ref": "CAP-9"}]}, "a.b": 1}

    assert generic.compile_path("$.cart.lines[*].ref") == ("cart", "lines", None, "ref")
    assert generic.find(doc, "$.cart.lines[*].ref") == ["TEE-1", "CAP-9"]
    assert generic.find(doc, "$.cart.lines[1].ref") == ["CAP-9"]
    assert generic.find(doc, "$.cart.lines[5].ref") == []
    assert generic.find(doc, "$.cart.missing[*]") == []
    assert generic.one(doc, "$") == doc


@settings(max_examples=200)
@given(st.text(alphabet="$.[]*0123456789ab-_", max_size=20))
def test_the_settings_accept_exactly_the_paths_the_reader_understands(path: str) -> None:
    import re

    try:
        generic.compile_path(path)
        understood = True
    except ValueError:
        understood = False
    assert (re.fullmatch(JSON_PATH, path) is not None) == understood


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "cart"}, "set exactly one of kind and kind_path"),
        ({"kind_path": None}, "set exactly one of kind and kind_path"),
        ({"order": None}, "deliveries of kind 'order' need the 'order' paths"),
        ({"contact": None}, "deliveries of kind 'contact' need the 'contact' paths"),
        ({"cart": {"id": "$.cart.id"}}, "deliveries of kind 'cart' need cart.items"),
        ({"id": "cart.id"}, "String should match pattern"),
        ({"secret": "short"}, "String should have at least 16 characters"),
    ],
)
def test_generic_settings_that_cannot_work_are_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        GenericWebhookSettings.model_validate({**generic_settings(), **changes})
    assert message in str(caught.value)


def test_the_readme_example_maps_to_a_cart_and_an_order() -> None:
    config = GenericWebhookSettings.model_validate(generic_settings())
    _, [saved, paid] = readme_platforms()

    cart = generic.map_webhook(config, compact(saved), {}, currency="USD", now=NOW).event
    order = generic.map_webhook(
        config, compact(paid), {}, currency="USD", now=NOW + timedelta(hours=3)
    ).event

    assert isinstance(cart, CartUpdated) and isinstance(order, OrderPlaced)
    assert (cart.id, cart.cart.id, cart.cart.currency) == ("generic:d-1842", "4411", "EUR")
    assert order.order.model_dump() == {
        "id": "9001",
        "cart_id": "4411",
        "total": 3998,
        "currency": "EUR",
        "discount_codes": ["WELCOME10"],
    }


# --- no payload is ever a 5xx ----------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SHOPIFY_FIELDS = [*sorted(sample("shopify_checkouts_create")), "id"]
ORDER_FIELDS = sorted(sample("shopify_orders_create"))
WOO_FIELDS = sorted(sample("woocommerce_order_created"))


def _maps_or_refuses(run: Any) -> None:
    try:
        mapped = run()
    except ProblemError as exc:
        assert 400 <= exc.status < 500
    else:
        assert isinstance(mapped, Mapped)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["checkouts/update", "orders/paid", "customers/update", "checkouts/delete"]),
    st.sampled_from(SHOPIFY_FIELDS + ORDER_FIELDS),
    JSON,
)
def test_any_shopify_field_of_any_value_maps_or_is_a_4xx(
    topic: str, field: str, value: Any
) -> None:
    base = sample(
        "shopify_orders_create" if topic.startswith("orders") else "shopify_checkouts_create"
    )
    body = json.dumps({**base, field: value}).encode()

    _maps_or_refuses(lambda: shopify.map_webhook(delivery(topic, NOW), body, now=NOW))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["pending", "processing"]), st.sampled_from(WOO_FIELDS), JSON)
def test_any_woocommerce_field_of_any_value_maps_or_is_a_4xx(
    status: str, field: str, value: Any
) -> None:
    body = json.dumps({**sample("woocommerce_order_created"), "status": status, field: value})

    _maps_or_refuses(lambda: woocommerce.map_webhook("order.updated", body.encode(), now=NOW))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=1),
    st.sampled_from(["id", "event", "sent_at", "cart", "order", "customer"]),
    JSON,
)
def test_any_generic_field_of_any_value_maps_or_is_a_4xx(
    which: int, field: str, value: Any
) -> None:
    config = GenericWebhookSettings.model_validate(generic_settings())
    payload = readme_platforms()[1][which]
    body = json.dumps({**payload, field: value}).encode()

    _maps_or_refuses(lambda: generic.map_webhook(config, body, {}, currency="USD", now=NOW))


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_any_bytes_map_or_are_a_4xx(body: bytes) -> None:
    _maps_or_refuses(lambda: shopify.map_webhook(delivery("checkouts/create"), body, now=NOW))
    _maps_or_refuses(lambda: woocommerce.map_webhook("order.created", body, now=NOW))
