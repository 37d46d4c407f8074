"""The demo is self-contained: a reminder in the demo's outbox shows the demo store's
product images and its restore link lands on the demo store's cart page, all served by
the demo's own app on 127.0.0.1 (no CDN, no shop host, nothing off this machine)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from browser_support import LOOPBACK, DemoServer, LiveServer, NetworkLog
from playwright.sync_api import Frame, Page, expect

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from cartback.demo.catalogue import BY_SLUG, CURRENCY, cart_url
from cartback.demo.store import DEMO_NOTE
from support.factories import advance, iso

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
JACKET = BY_SLUG["waxed-jacket"]  # €189.00
CART_ID = "demo-cart-001"


@pytest.fixture
def reminded(demo_server: DemoServer, runtime: Runtime, clock: ManualClock) -> DemoServer:
    """Given a shopper left two waxed jackets in the demo store and got the first reminder,
    the cart sent the way the demo's simulated shoppers send it."""
    base = demo_server.live.url
    event = {
        "id": "demo-evt-001-00001",
        "type": "cart.updated",
        "occurred_at": iso(clock.now()),
        "cart": {
            "id": CART_ID,
            "currency": CURRENCY,
            "items": [JACKET.line(base, quantity=2)],
            "restore_url": cart_url(base, CART_ID),
        },
        "contact": {"email": "ann@example.com", "first_name": "Ann", "consent": {"email": True}},
    }
    response = demo_server.live.api.post("/v1/events", json=event, headers=demo_server.auth)
    assert response.status_code == 200, response.text
    advance(runtime, clock, 30 * MINUTE)  # abandoned
    advance(runtime, clock, 1 * HOUR)  # the first reminder is due an hour later
    assert [m["status"] for m in demo_server.cart(CART_ID)["messages"]] == ["sent"]
    return demo_server


def open_reminder(page: Page, live: LiveServer) -> Frame:
    page.goto(f"{live.url}/outbox")
    page.locator("tr:has(td) a").first.click()
    page.wait_for_url(f"{live.url}/outbox/*")  # waits for "load": the iframe's images too
    expect(page.frame_locator("iframe").locator("body")).to_contain_text("Return to your cart")
    found = [f for f in page.frames if f.url.endswith("/html")]
    assert len(found) == 1
    return found[0]


def test_the_demo_reminder_shows_local_images_and_restores_to_the_demo_cart_page(
    page: Page, reminded: DemoServer, network: NetworkLog, artifacts: Path
) -> None:
    live = reminded.live
    mail = open_reminder(page, live)

    # the product image is the demo's own SVG, and it loaded
    thumb = mail.locator("img.thumb")
    assert thumb.get_attribute("src") == f"{live.url}/demo/img/waxed-jacket.svg"
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0
    page.screenshot(path=artifacts / "demo-outbox-message.png", full_page=True)
    assert reminded.cart(CART_ID)["messages"][0]["status"] == "sent"  # previewing is not opening

    # when the shopper's "Return to your cart" is clicked inside the (sandboxed) iframe
    with page.expect_request(lambda r: "/demo/cart/" in r.url) as landing:
        mail.get_by_role("link", name="Return to your cart").click()
    mail.wait_for_url(f"{live.url}/demo/cart/**")
    mail.wait_for_load_state("load")

    # then /r/<token> counted the click once and redirected to the demo store's cart page
    hop = landing.value
    assert hop.url == (
        f"{live.url}/demo/cart/{CART_ID}?utm_source=cartback&utm_medium=email"
        "&utm_campaign=cart_recovery_step_1"
    )
    assert hop.redirected_from is not None
    assert hop.redirected_from.url.startswith(f"{live.url}/r/")
    body = reminded.cart(CART_ID)
    assert body["messages"][0]["status"] == "clicked"
    assert [e["kind"] for e in body["timeline"]].count("message.clicked") == 1

    # and the page shows the cart: its item, quantity, total and the demo's note
    expect(mail.get_by_role("heading", name="Your cart")).to_be_visible()
    expect(mail.locator(".cart-item")).to_have_text(JACKET.name)
    expect(mail.locator(".cart-total")).to_have_text("€378.00")
    expect(mail.locator("main")).to_contain_text("Quantity: 2 × €189.00")
    expect(mail.locator(".note")).to_have_text(DEMO_NOTE)
    image = mail.locator("img[src='/demo/img/waxed-jacket.svg']")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0
    page.screenshot(path=artifacts / "demo-cart-in-outbox.png", full_page=True)

    # nothing left the machine: every request went to the demo's server
    assert network.hosts() == {LOOPBACK}
    assert network.stubbed_hosts == set()
    assert any("/demo/img/" in url for url in network.urls)


def test_the_demo_store_pages_stand_alone(
    page: Page, reminded: DemoServer, network: NetworkLog, artifacts: Path
) -> None:
    live = reminded.live

    page.goto(f"{live.url}/demo/cart/{CART_ID}")
    expect(page).to_have_title("Demo Outfitters — your cart")
    expect(page.locator(".cart-total")).to_have_text("€378.00")
    page.screenshot(path=artifacts / "demo-cart.png", full_page=True)

    page.get_by_role("link", name=JACKET.name).click()
    expect(page.get_by_role("heading", name=JACKET.name)).to_be_visible()
    expect(page.locator(".price")).to_have_text("€189.00")

    page.get_by_role("link", name="Demo Outfitters").click()
    expect(page.locator(".grid img")).to_have_count(len(BY_SLUG))
    page.wait_for_load_state("load")  # the images too
    widths = page.locator(".grid img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(width > 0 for width in widths), widths
    page.screenshot(path=artifacts / "demo-store-front.png", full_page=True)

    image = live.api.get("/demo/img/waxed-jacket.svg")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert live.api.get("/demo/cart/no-such-cart").status_code == 404
    assert network.hosts() == {LOOPBACK}
