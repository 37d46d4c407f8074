"""The storefront snippet (cartback.js) in real headless Chromium, on the demo store that
`cartback demo` serves, talking to the real ``/v1/collect``.

The page's clock (Playwright's ``page.clock``) and cartback's (the ManualClock) start at
the same moment and move together (:meth:`Shop.wait`); nothing sleeps. The snippet's own
timers (its send delay, the typing pause, retries, the prompt's delay, the tab title) run
only when a test moves the page's clock.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from browser_support import CollectLog, DemoServer, OpenContext
from playwright.sync_api import BrowserContext, Locator, Page, Route, expect

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.core.db import transaction
from cartback.demo.catalogue import BY_SLUG, CONSENT_TEXT
from cartback.snippet.bundle import source as readable_source
from cartback.stores.models import Store
from cartback.stores.schemas import StoreSettings
from support.factories import START, advance, run_due

SEND_DELAY_MS = 200  # cartback.js: the events of one interaction go in one request
TYPING_PAUSE_MS = 800  # cartback.js: a contact field is read this long after the last key
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
JACKET = BY_SLUG["waxed-jacket"]  # €189.00
BEANIE = BY_SLUG["wool-beanie"]  # €24.00
SHOES = BY_SLUG["trail-shoes"]  # €129.00
EMAIL = "ann@example.com"
NUDGE = "Your cart is waiting"
QUEUE = "JSON.parse(localStorage.getItem('cartback:queue') || '[]')"


@dataclass
class Shop:
    """A shopper's tab on the demo store, on a clock that moves with cartback's."""

    page: Page
    server: DemoServer
    clock: ManualClock

    @property
    def url(self) -> str:
        return self.server.live.url

    def open(self, path: str) -> None:
        """Load a page and let the snippet fetch its settings and send what it has."""
        self.page.goto(self.url + path)
        self.page.wait_for_load_state("networkidle")  # the settings have arrived
        self.sent()

    def open_quietly(self, path: str) -> None:
        """Load a page, and let its snippet try to send (for a cartback that is away)."""
        self.page.goto(self.url + path)
        self.page.clock.run_for(SEND_DELAY_MS)

    def wait(self, seconds: float) -> None:
        """Time passes for the shopper and for cartback alike."""
        self.clock.advance(timedelta(seconds=seconds))
        self.page.clock.run_for(int(seconds * 1000))

    def sent(self) -> None:
        """Everything the snippet queued so far has been delivered."""
        self.page.clock.run_for(SEND_DELAY_MS)
        self.page.wait_for_function(f"() => {QUEUE}.length === 0")

    def queued(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.page.evaluate(QUEUE)
        return found

    def add_to_cart(self) -> None:
        self.page.get_by_role("button", name="Add to cart").click()
        self.sent()

    def cart_id(self) -> str:
        found: str = self.page.evaluate("JSON.parse(localStorage.getItem('demo-shop-cart')).id")
        return found

    def leave_through_the_top(self) -> None:
        self.page.mouse.move(550, 300)
        self.page.mouse.move(550, -5)

    def prompt(self) -> Locator:
        return self.page.get_by_role("dialog")


def start_clock(page: Page) -> None:
    """The page's clock reads cartback's START and stands still until a test moves it."""
    page.clock.install(time=START - timedelta(seconds=5))
    page.clock.pause_at(START)


@pytest.fixture
def shop(page: Page, demo_server: DemoServer, clock: ManualClock) -> Shop:
    start_clock(page)
    return Shop(page, demo_server, clock)


@pytest.fixture
def page_errors(page: Page) -> Iterator[list[str]]:
    """Uncaught errors on the page: the snippet must never cause one."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield errors
    assert errors == []


def configure(runtime: Runtime, store_id: str, **changes: Any) -> None:
    """Change the store's settings (``snippet`` merged key by key) before any page loads:
    the snippet's settings are cached for 5 minutes."""
    with transaction(runtime.sessions) as session:
        store = session.get(Store, store_id)
        assert store is not None
        settings = dict(store.settings)
        snippet = {**settings["snippet"], **changes.pop("snippet", {})}
        settings.update(changes, snippet=snippet)
        store.settings = StoreSettings.model_validate(settings).model_dump(mode="json")


def items(*lines: tuple[Any, int], base: str) -> list[dict[str, Any]]:
    return [
        {
            "sku": product.sku,
            "name": product.name,
            "unit_price": product.price,
            "quantity": quantity,
            "url": f"{base}{product.page_path}",
            "image_url": f"{base}{product.image_path}",
        }
        for product, quantity in lines
    ]


# -- cart events ----------------------------------------------------------------------------


def test_product_views_cart_updates_and_checkout_arrive_in_cartback(
    shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # when a shopper views a jacket, adds it, adds two beanies, and starts the checkout
    shop.open(JACKET.page_path)
    shop.wait(20)
    shop.add_to_cart()
    shop.open(BEANIE.page_path)
    shop.wait(15)
    shop.add_to_cart()
    shop.wait(2)
    shop.add_to_cart()
    shop.wait(28)
    shop.open("/demo/checkout")

    # then the snippet sent each as it happened, and cartback answered 204 each time
    assert collected.types() == [
        "product.viewed",
        "cart.updated",
        "product.viewed",
        "cart.updated",
        "cart.updated",
        "checkout.started",
    ]
    assert collected.statuses == [204] * len(collected.bodies)
    cart_id = shop.cart_id()
    base = shop.url
    views = collected.events("product.viewed")
    assert views[0]["product"] == {
        "sku": JACKET.sku,
        "name": JACKET.name,
        "price": JACKET.price,
        "currency": "EUR",
        "url": f"{base}{JACKET.page_path}",
        "image_url": f"{base}{JACKET.image_path}",
    }
    last = collected.events("cart.updated")[-1]["cart"]
    assert last == {
        "id": cart_id,
        "currency": "EUR",
        "items": items((JACKET, 1), (BEANIE, 2), base=base),
        "restore_url": f"{base}/demo/cart/{cart_id}",
    }
    assert collected.events("checkout.started")[0]["cart"] == {"id": cart_id}

    # and every request names the store and one visitor; every event has its id and time
    public_key = collected.bodies[0]["key"]
    assert public_key.startswith("cb_pk_")
    assert {body["key"] for body in collected.bodies} == {public_key}
    visitors = {body["visitor"] for body in collected.bodies}
    assert len(visitors) == 1 and UUID4.match(visitors.pop())
    assert {body["webdriver"] for body in collected.bodies} == {False}
    events = collected.events()
    assert all(UUID4.match(e["id"]) and ISO_Z.match(e["at"]) for e in events)
    assert len({e["id"] for e in events}) == len(events)

    # and cartback has the cart, at the checkout, with the times the shopper acted
    cart = shop.server.cart(cart_id)
    assert (cart["status"], cart["stage"]) == ("active", "checkout")
    assert cart["items"] == [
        {**line, "variant": None} for line in items((JACKET, 1), (BEANIE, 2), base=base)
    ]
    assert (cart["value"], cart["item_count"]) == (JACKET.price + 2 * BEANIE.price, 3)
    assert cart["last_activity_at"] == "2026-01-05T09:01:05Z"  # the checkout, 65 s in


def test_an_unchanged_cart_is_not_sent_again_on_the_next_pages(
    shop: Shop, collected: CollectLog
) -> None:
    # given a cart with a jacket
    shop.open(JACKET.page_path)
    shop.add_to_cart()

    # when the shopper browses on (the shop tells the snippet its cart on every page)
    shop.open("/demo/")
    shop.open("/demo/cart")
    shop.open(BEANIE.page_path)

    # then only the change was news
    assert collected.types() == ["product.viewed", "cart.updated", "product.viewed"]


def test_a_ga4_data_layer_is_read_into_product_views_and_cart_updates(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given a store page with a GA4 data layer and the snippet's tag
    key = public_key(shop)
    shop_page = (
        "<!doctype html><title>GA4 shop</title><script>window.dataLayer = [{event: 'view_item',"
        " ecommerce: {currency: 'EUR', items: [{item_id: 'TRAIL-SHOES', item_name: 'Trail "
        "Running Shoes', price: 129.0}]}}];</script>"
        f"<script async src='/cartback.js' data-key='{key}'></script>"
    )
    page.route(f"{shop.url}/ga4/shoes", lambda route: route.fulfill(body=shop_page))

    # when it loads (the view was pushed before the snippet ran), then the shopper adds
    # two pairs and removes one, as gtag and GTM push them
    shop.open("/ga4/shoes")
    for event, quantity in (("add_to_cart", 2), ("remove_from_cart", 1)):
        shop.wait(3)
        page.evaluate(
            "([event, quantity]) => dataLayer.push({event, ecommerce: {currency: 'EUR', items:"
            " [{item_id: 'TRAIL-SHOES', item_name: 'Trail Running Shoes', price: 129.0,"
            " quantity}]}})",
            [event, quantity],
        )
        shop.sent()

    # then prices in major units became minor units, and the deltas whole carts
    assert collected.types() == ["product.viewed", "cart.updated", "cart.updated"]
    assert collected.events("product.viewed")[0]["product"]["price"] == 12900
    carts = [e["cart"] for e in collected.events("cart.updated")]
    assert [[(i["sku"], i["unit_price"], i["quantity"]) for i in c["items"]] for c in carts] == [
        [("TRAIL-SHOES", 12900, 2)],
        [("TRAIL-SHOES", 12900, 1)],
    ]
    assert carts[0]["id"] == carts[1]["id"]  # one cart, named by the snippet
    assert shop.server.cart(carts[1]["id"])["value"] == 12900


def public_key(shop: Shop) -> str:
    """The store's public key, from the snippet's tag on the demo store's pages."""
    response = shop.server.live.api.get("/demo/")
    found = re.search(r"data-key='(cb_pk_[^']+)'", response.text)
    assert found
    return found.group(1)


def test_calls_queued_before_the_snippet_loads_are_replayed_and_a_refused_one_costs_no_other(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given a store page that calls the snippet before it has loaded: a product view and
    # an email identified without consent, which an EU-mode store refuses
    key = public_key(shop)
    shop_page = (
        "<!doctype html><title>Early calls</title><script>"
        "window.cartback = window.cartback || [];"
        f"cartback.push(['product', {{sku: '{SHOES.sku}', name: '{SHOES.name}', price: "
        f"{SHOES.price}, currency: 'EUR'}}]);"
        f"cartback.push(['identify', {{email: '{EMAIL}'}}]);</script>"
        f"<script async src='/cartback.js' data-key='{key}'></script>"
    )
    page.route(f"{shop.url}/early", lambda route: route.fulfill(body=shop_page))

    # when it loads and the snippet sends both in one request
    page.goto(f"{shop.url}/early")
    page.wait_for_load_state("networkidle")
    for _ in range(3):  # the batch, then each event alone
        with page.expect_response(f"{shop.url}/v1/collect"):
            page.clock.run_for(SEND_DELAY_MS)
    assert shop.queued() == []

    # then cartback refused the batch (422: no consent for the email), the snippet sent
    # each event alone, and only the refused one was dropped
    assert [[e["type"] for e in body["events"]] for body in collected.bodies] == [
        ["product.viewed", "contact.captured"],
        ["product.viewed"],
        ["contact.captured"],
    ]
    assert collected.statuses == [422, 204, 422]
    assert collected.events("product.viewed")[0]["product"]["url"] == f"{shop.url}/early"


# -- contact capture and consent ------------------------------------------------------------


def test_in_eu_mode_a_typed_email_is_captured_only_after_the_consent_box(
    shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given the demo store (EU mode) and a shopper at its checkout with a jacket
    shop.open(JACKET.page_path)
    shop.wait(20)
    shop.add_to_cart()
    shop.wait(20)
    shop.open("/demo/checkout")
    cart_id = shop.cart_id()
    page = shop.page

    # when they type their email and pause
    page.get_by_label("Email", exact=True).press_sequentially(EMAIL)
    page.get_by_label("Phone (optional)").press_sequentially("+49 30 901820")
    shop.wait(5)
    shop.sent()

    # then nothing about them left the page, nor stays in its storage
    assert collected.events("contact.captured") == []
    assert shop.server.cart(cart_id)["contact"] is None
    kept = page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert EMAIL not in kept and "901820" not in kept

    # when they tick the box
    page.get_by_label(CONSENT_TEXT).check()
    shop.sent()

    # then the email and phone are captured at once, with the consent and the text shown
    [captured] = collected.events("contact.captured")
    assert {k: v for k, v in captured.items() if k not in ("id", "at")} == {
        "type": "contact.captured",
        "email": EMAIL,
        "phone": "+49 30 901820",
        "consent": {"email": True, "sms": True},
        "consent_text": CONSENT_TEXT,
        "source": "field",
    }
    assert shop.server.cart(cart_id)["contact"]["email"] == EMAIL

    # and unticking it withdraws the consent
    page.get_by_label(CONSENT_TEXT).uncheck()
    shop.sent()
    withdrawn = collected.events("contact.captured")[-1]
    assert (withdrawn["email"], withdrawn["consent"]) == (EMAIL, {"email": False, "sms": False})


def test_in_default_mode_an_email_is_captured_as_typed_after_a_pause(
    shop: Shop, runtime: Runtime, collected: CollectLog
) -> None:
    # given a store whose consent mode lets the snippet capture as typed
    configure(runtime, shop.server.store_id, snippet={"consent_mode": "default"})
    shop.open(JACKET.page_path)
    shop.wait(20)
    shop.add_to_cart()
    shop.wait(20)
    shop.open("/demo/checkout")

    # when the shopper types their email, key by key
    shop.page.get_by_label("Email", exact=True).press_sequentially(EMAIL)

    # then it is read only once they pause, as one capture of the whole address, with no
    # consent (the box was never ticked: the store's basis decides)
    shop.page.clock.run_for(TYPING_PAUSE_MS - 100)
    assert [e["type"] for e in shop.queued()] == []
    shop.page.clock.run_for(100)
    shop.sent()
    [captured] = collected.events("contact.captured")
    assert (captured["email"], captured["source"]) == (EMAIL, "field")
    assert "consent" not in captured and "consent_text" not in captured
    assert shop.server.cart(shop.cart_id())["contact"]["email"] == EMAIL


# -- the exit-intent prompt -----------------------------------------------------------------


def test_the_exit_intent_prompt_shows_once_traps_focus_and_captures_the_contact(
    shop: Shop, runtime: Runtime, collected: CollectLog, page_errors: list[str]
) -> None:
    # given a shopper with a jacket in the cart (the demo's prompt waits 5 s on a page)
    page = shop.page
    shop.open(JACKET.page_path)
    shop.add_to_cart()
    shop.leave_through_the_top()
    expect(shop.prompt()).to_have_count(0)  # too early
    shop.wait(5)

    # when the pointer leaves the page through the top
    shop.leave_through_the_top()

    # then the prompt is a labelled, described modal dialog with the contact field focused
    dialog = page.get_by_role("dialog", name="Email me my cart")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog).to_have_accessible_description(re.compile(r"^Leaving already\?"))
    field = dialog.get_by_label("Email or phone number")
    box = dialog.get_by_label(CONSENT_TEXT)  # EU mode: the prompt asks for consent too
    send = dialog.get_by_role("button", name="Send me my cart")
    close = dialog.get_by_role("button", name="Close")
    expect(field).to_be_focused()

    # and Tab goes round inside it, both ways
    for key, then in (("Tab", box), ("Tab", send), ("Tab", close), ("Tab", field)):
        page.keyboard.press(key)
        expect(then).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(close).to_be_focused()
    field.focus()

    # when the shopper sends it without ticking the box, nothing is sent
    field.fill(EMAIL)
    send.click()
    expect(dialog.locator(".error")).to_have_text("Please tick the box so that we may contact you.")
    expect(box).to_be_focused()
    shop.sent()
    assert collected.events("prompt.submitted") == []

    # when they tick it and send
    box.check()
    send.click()

    # then they are thanked, and the email, its consent and the text shown reach cartback
    expect(dialog.get_by_role("status")).to_have_text("Done: your cart is on its way.")
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    shop.sent()
    [shown] = collected.events("prompt.shown")
    assert (shown["prompt"], shown["offer"]) == ("exit_intent", "send_cart")
    [submitted] = collected.events("prompt.submitted")
    assert {k: v for k, v in submitted.items() if k not in ("id", "at")} == {
        "type": "prompt.submitted",
        "prompt": "exit_intent",
        "offer": "send_cart",
        "email": EMAIL,
        "consent": {"email": True},
        "consent_text": CONSENT_TEXT,
    }
    assert collected.events("prompt.dismissed") == []
    assert shop.server.cart(shop.cart_id())["contact"]["email"] == EMAIL

    # and the cart they asked for is sent at once
    run_due(runtime)
    assert runtime.outbox is not None
    assert [m.to_address for m in runtime.outbox.list()] == [EMAIL]

    # when they close it, focus goes back where it was
    dialog.get_by_role("button", name="Close").click()
    expect(shop.prompt()).to_have_count(0)
    expect(page.get_by_role("button", name="Add to cart")).to_be_focused()

    # and leaving again, here or on the next page, shows no prompt
    shop.leave_through_the_top()
    shop.open(BEANIE.page_path)
    shop.wait(10)
    shop.leave_through_the_top()
    expect(shop.prompt()).to_have_count(0)
    assert len(collected.events("prompt.shown")) == 1


def test_escape_dismisses_the_prompt_for_the_rest_of_the_session(
    shop: Shop, collected: CollectLog
) -> None:
    # given the exit prompt is open on a product page
    page = shop.page
    shop.open(JACKET.page_path)
    shop.add_to_cart()
    shop.wait(6)
    shop.leave_through_the_top()
    expect(shop.prompt()).to_be_visible()

    # when the shopper presses Escape
    page.keyboard.press("Escape")

    # then it is gone, focus is back on the button they used, and cartback hears of it
    expect(shop.prompt()).to_have_count(0)
    expect(page.get_by_role("button", name="Add to cart")).to_be_focused()
    shop.sent()
    [dismissed] = collected.events("prompt.dismissed")
    assert (dismissed["prompt"], dismissed["offer"]) == ("exit_intent", "send_cart")

    # and it does not come back in this session, on this page or the next
    shop.leave_through_the_top()
    shop.open(SHOES.page_path)
    shop.wait(6)
    shop.leave_through_the_top()
    expect(shop.prompt()).to_have_count(0)
    assert len(collected.events("prompt.shown")) == 1


def test_no_prompt_asks_a_shopper_who_already_gave_their_email(
    shop: Shop, collected: CollectLog
) -> None:
    # given a shopper who gave their email, with consent, at the checkout
    shop.open(JACKET.page_path)
    shop.add_to_cart()
    shop.open("/demo/checkout")
    shop.page.get_by_label("Email", exact=True).fill(EMAIL)
    shop.page.get_by_label(CONSENT_TEXT).check()
    shop.sent()

    # when they leave a page later
    shop.open(BEANIE.page_path)
    shop.wait(6)
    shop.leave_through_the_top()

    # then no prompt asks for it again
    expect(shop.prompt()).to_have_count(0)
    assert collected.events("prompt.shown") == []


def test_a_timed_prompt_speaks_the_store_language_right_to_left(
    shop: Shop, runtime: Runtime, collected: CollectLog
) -> None:
    # given a Persian store whose timed prompt offers a price watch after 20 s
    title = "اگر قیمت سبد خرید کم شد، به من خبر بده"
    configure(
        runtime,
        shop.server.store_id,
        locale="fa",
        snippet={
            "prompts": {"timed": {"offer": "price_watch", "delay_seconds": 20}},
            "texts": {"price_watch_title": title, "close": "بستن"},
        },
    )
    shop.open(JACKET.page_path)
    shop.add_to_cart()

    # when 20 s pass on the page
    shop.wait(19)
    expect(shop.prompt()).to_have_count(0)
    shop.wait(1)

    # then the prompt is in Persian, right to left, with the store's words
    dialog = shop.page.get_by_role("dialog", name=title)
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("dir", "rtl")
    expect(dialog).to_have_attribute("lang", "fa")
    expect(dialog.get_by_role("button", name="بستن")).to_be_visible()
    shop.sent()
    [shown] = collected.events("prompt.shown")
    assert (shown["prompt"], shown["offer"]) == ("timed", "price_watch")


def test_on_a_phone_the_back_gesture_opens_the_exit_prompt(
    open_context: OpenContext, demo_server: DemoServer, clock: ManualClock, collected: CollectLog
) -> None:
    # given a shopper on a phone with a jacket in the cart
    phone = open_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    start_clock(page)
    shop = Shop(page, demo_server, clock)
    shop.open("/demo/")
    shop.open(JACKET.page_path)
    shop.add_to_cart()
    shop.wait(6)

    # when they go back
    page.go_back()

    # then the prompt opens instead, still on the product page
    expect(page.get_by_role("dialog", name="Email me my cart")).to_be_visible()
    assert page.url.endswith(JACKET.page_path)

    # and once dismissed, back leaves as usual
    page.keyboard.press("Escape")
    expect(shop.prompt()).to_have_count(0)
    shop.sent()
    page.go_back()
    page.wait_for_url(f"{shop.url}/demo/")
    assert [e["type"] for e in collected.events() if e["type"].startswith("prompt.")] == [
        "prompt.shown",
        "prompt.dismissed",
    ]


# -- the waiting tab ------------------------------------------------------------------------


def test_the_tab_title_alternates_while_the_shopper_is_away_and_comes_back_on_focus(
    shop: Shop, context: BrowserContext
) -> None:
    # given a shopper with an empty cart, in a browser whose windows really lose focus
    page = shop.page
    shop.open(JACKET.page_path)
    context.new_cdp_session(page).send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    title = f"{JACKET.name} — Demo Outfitters"
    other = context.new_page()

    # when they switch to another tab with nothing in the cart, the title stays
    other.bring_to_front()
    page.clock.run_for(4000)
    expect(page).to_have_title(title)
    page.bring_to_front()

    # when they add two jackets and switch away
    shop.add_to_cart()
    shop.wait(2)
    shop.add_to_cart()
    other.bring_to_front()

    # then the title alternates with the reminder, every 2 s
    expect(page).to_have_title(f"(2) {NUDGE}")
    page.clock.run_for(2000)
    expect(page).to_have_title(title)
    page.clock.run_for(2000)
    expect(page).to_have_title(f"(2) {NUDGE}")

    # when they come back, the title is the page's own again, and stays
    page.bring_to_front()
    expect(page).to_have_title(title)
    page.clock.run_for(6000)
    expect(page).to_have_title(title)


# -- restoring a cart from a reminder ------------------------------------------------------


def test_a_reminder_link_restores_the_cart_in_another_browser(
    shop: Shop,
    runtime: Runtime,
    open_context: OpenContext,
    page_errors: list[str],
) -> None:
    # given a shopper who filled a cart, gave their email with consent at the checkout
    # and left
    page = shop.page
    shop.open(JACKET.page_path)
    shop.wait(30)
    shop.add_to_cart()
    shop.open(BEANIE.page_path)
    shop.wait(30)
    shop.add_to_cart()
    shop.open("/demo/checkout")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label(CONSENT_TEXT).check()
    shop.sent()
    cart_id = shop.cart_id()
    page.close()

    # when the cart is abandoned and the first reminder goes out
    advance(runtime, shop.clock, timedelta(minutes=30))
    advance(runtime, shop.clock, timedelta(hours=1))
    cart = shop.server.cart(cart_id)
    assert (cart["status"], [m["status"] for m in cart["messages"]]) == ("abandoned", ["sent"])

    # and the shopper opens its link on another device
    device = open_context().new_page()
    device.goto(f"{shop.url}/outbox")
    device.get_by_role("link", name=re.compile("forget")).first.click()
    mail = device.frame_locator("iframe")
    link = mail.get_by_role("link", name="Return to your cart").get_attribute("href")
    assert link is not None and link.startswith(f"{shop.url}/r/")
    device.goto(link)

    # then it lands on the store's restore page, and the cart is this browser's cart now
    device.wait_for_url(f"{shop.url}/demo/cart/{cart_id}?utm_source=cartback*")
    expect(device.locator(".cart-item")).to_have_text([JACKET.name, BEANIE.name])
    expect(device.locator("[data-cart-count]")).to_have_text("2")
    device.get_by_role("link", name="Checkout").click()
    expect(device.get_by_role("heading", name="Checkout")).to_be_visible()
    expect(device.locator("#summary")).to_have_text("2 items, €213.00")
    assert device.evaluate("JSON.parse(localStorage.getItem('demo-shop-cart')).id") == cart_id

    # and cartback counted the click
    assert shop.server.cart(cart_id)["messages"][0]["status"] == "clicked"


# -- when cartback is away -----------------------------------------------------------------


def test_the_store_works_when_the_snippet_cannot_load(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given cartback cannot be reached at all
    page.route("**/cartback.js", lambda route: route.abort("connectionrefused"))
    page.route("**/v1/collect**", lambda route: route.abort("connectionrefused"))

    # when a shopper adds a jacket, opens the cart and orders
    shop.page.goto(f"{shop.url}{JACKET.page_path}")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".added")).to_have_text(f"{JACKET.name} is in your cart.")
    page.get_by_role("link", name="Cart (1)").click()
    expect(page.locator(".cart-item")).to_have_text(JACKET.name)
    page.get_by_role("link", name="Checkout").click()
    cart_id = shop.cart_id()
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_role("button", name="Place order").click()

    # then the order went through, with no error on any page, and cartback heard nothing
    # from the browser (only the order, from the shop's server)
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()
    assert collected.bodies == []
    assert not shop.server.has_cart(cart_id)


def test_events_wait_in_the_queue_while_cartback_is_unreachable_and_go_later(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given the snippet loaded, and then cartback became unreachable
    def unreachable(route: Route) -> None:
        route.abort("connectionrefused")

    shop.open(JACKET.page_path)
    page.route("**/v1/collect**", unreachable)

    # when the shopper adds the jacket twice
    shop.wait(10)
    page.get_by_role("button", name="Add to cart").click()
    page.clock.run_for(SEND_DELAY_MS)
    shop.wait(5)
    page.get_by_role("button", name="Add to cart").click()
    page.clock.run_for(SEND_DELAY_MS)

    # then the store works, every try failed, and the newest cart waits in the queue
    expect(page.locator("[data-cart-count]")).to_have_text("2")
    assert collected.failures and collected.statuses == [204]
    [waiting] = shop.queued()
    assert [(i["sku"], i["quantity"]) for i in waiting["cart"]["items"]] == [(JACKET.sku, 2)]
    assert not shop.server.has_cart(shop.cart_id())

    # when cartback is reachable again, the next retry delivers it (the wait doubles from
    # 2 s on each failure, so it comes within 20 s here)
    page.unroute("**/v1/collect**", unreachable)
    page.clock.run_for(20_000)
    page.wait_for_function(f"() => {QUEUE}.length === 0")
    assert collected.statuses == [204, 204]
    assert shop.server.cart(shop.cart_id())["item_count"] == 2


def test_the_queue_survives_a_page_load_while_cartback_is_down(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given cartback's snippet endpoints answer 503 (it is away)
    shop.server.outage.down = True

    # when a shopper views a jacket, adds it and goes on to the cart page (each page's
    # snippet tries, and the leaving page's beacon too)
    shop.open_quietly(JACKET.page_path)
    shop.wait(10)
    page.get_by_role("button", name="Add to cart").click()
    page.clock.run_for(SEND_DELAY_MS)
    shop.open_quietly("/demo/cart")

    # then the store works, and both events wait in the queue, across the page load
    expect(page.locator(".cart-item")).to_have_text(JACKET.name)
    assert [e["type"] for e in shop.queued()] == ["product.viewed", "cart.updated"]
    assert set(collected.statuses) == {503}
    cart_id = shop.cart_id()
    assert not shop.server.has_cart(cart_id)

    # when cartback is back, the next try (the first backoff is at most 2 s) delivers them
    shop.server.outage.down = False
    page.clock.run_for(2000)
    page.wait_for_function(f"() => {QUEUE}.length === 0")
    assert collected.statuses[-1] == 204
    assert shop.server.cart(cart_id)["items"][0]["sku"] == JACKET.sku


def test_a_rate_limited_batch_waits_for_retry_after(
    page: Page, shop: Shop, collected: CollectLog
) -> None:
    # given cartback answers the first request 429 with Retry-After: 30
    answers = iter([429])

    def limited(route: Route) -> None:
        status = next(answers, None)
        if status is None:
            route.continue_()
        else:
            route.fulfill(status=status, headers={"Retry-After": "30"})

    page.route("**/v1/collect", limited)

    # when the shopper views a jacket
    page.goto(f"{shop.url}{JACKET.page_path}")
    with page.expect_response(f"{shop.url}/v1/collect") as first:
        page.clock.run_for(SEND_DELAY_MS)
    assert first.value.status == 429

    # then it stays queued for 30 s, and goes on the next try
    page.clock.run_for(29_000)
    assert collected.statuses == [429]
    assert [e["type"] for e in shop.queued()] == ["product.viewed"]
    page.clock.run_for(1_000)
    page.wait_for_function(f"() => {QUEUE}.length === 0")
    assert collected.statuses == [429, 204]
    assert collected.bodies[0]["events"] == collected.bodies[1]["events"]


def test_the_snippet_works_when_the_browser_refuses_storage(
    page: Page, shop: Shop, collected: CollectLog, page_errors: list[str]
) -> None:
    # given a browser that throws on localStorage and sessionStorage (Safari private mode)
    page.add_init_script(
        "for (const name of ['localStorage', 'sessionStorage']) Object.defineProperty(window,"
        " name, {get() { throw new DOMException('denied', 'SecurityError'); }});"
    )

    # when a shopper adds a jacket
    page.goto(f"{shop.url}{JACKET.page_path}")
    page.wait_for_load_state("networkidle")
    with page.expect_response(f"{shop.url}/v1/collect") as viewed:
        page.clock.run_for(SEND_DELAY_MS)
    page.get_by_role("button", name="Add to cart").click()
    with page.expect_response(f"{shop.url}/v1/collect") as added:
        page.clock.run_for(SEND_DELAY_MS)

    # then the events still reach cartback
    assert (viewed.value.status, added.value.status) == (204, 204)
    assert collected.types() == ["product.viewed", "cart.updated"]
    assert shop.server.cart(collected.events("cart.updated")[0]["cart"]["id"])["value"] == 18900


def test_automation_is_reported(page: Page, shop: Shop, collected: CollectLog) -> None:
    page.add_init_script("Object.defineProperty(navigator, 'webdriver', {get: () => true})")
    shop.open(JACKET.page_path)
    assert collected.bodies[0]["webdriver"] is True


# -- how it is served -----------------------------------------------------------------------


def test_the_snippet_is_served_minified_gzipped_cacheable_and_small(
    demo_server: DemoServer,
) -> None:
    api = demo_server.live.api
    plain = api.get("/cartback.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "max-age=86400" in plain.headers["cache-control"]
    assert "content-encoding" not in plain.headers
    source = plain.text
    assert source.startswith("/*! cartback.js")
    assert len(source) < 0.75 * len(readable_source())  # comments and spaces are gone
    assert "eval(" not in source and "new Function" not in source

    zipped = api.get("/cartback.js", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.text == source  # httpx decoded it
    assert len(gzip.compress(plain.content)) <= 15 * 1024

    etag = plain.headers["etag"]
    again = api.get("/cartback.js", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
