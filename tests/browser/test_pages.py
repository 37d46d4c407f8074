"""What a person sees in a browser: the outbox, the email in it, its restore and
unsubscribe links, and the API docs; on the real app, with data made through the API
and the worker."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import LiveServer, NetworkLog
from playwright.sync_api import Frame, Page, expect

from cartback.app import Runtime
from cartback.core.clock import ManualClock
from support.factories import StoreKeys, advance, cart_updated, item, post_events

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SHOP = "acme.test"
SUBJECT = "Ann, did you forget something?"


def cart(live: LiveServer, keys: StoreKeys, cart_id: str = "cart-1") -> dict[str, Any]:
    response = live.api.get(f"/v1/carts/{cart_id}", headers=keys.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def first_reminder(
    live_server: LiveServer, runtime: Runtime, clock: ManualClock, store: StoreKeys
) -> StoreKeys:
    """Given Ann left two linen shirts in cart-1 and the worker sent the first reminder."""
    post_events(
        live_server.api,  # type: ignore[arg-type]  # an httpx.Client to the live server
        store,
        cart_updated(
            at=clock.now(), items=[item("TEE-1", price=1999, quantity=2, name="Linen shirt")]
        ),
    )
    advance(runtime, clock, 30 * MINUTE)  # abandoned
    advance(runtime, clock, 1 * HOUR)  # first step is due an hour later
    assert [m["status"] for m in cart(live_server, store)["messages"]] == ["sent"]
    return store


def open_message(page: Page, live: LiveServer) -> Frame:
    """From the outbox list to the message page; returns the email's iframe."""
    page.goto(f"{live.url}/outbox")
    page.get_by_role("link", name=SUBJECT).click()
    page.wait_for_url(f"{live.url}/outbox/*")
    frame = page.frame_locator("iframe").locator("body")
    expect(frame).to_contain_text("Return to your cart")
    found = [f for f in page.frames if f.url.endswith("/html")]
    assert len(found) == 1
    return found[0]


def test_the_outbox_lists_the_reminder_and_shows_the_rendered_email(
    page: Page,
    live_server: LiveServer,
    network: NetworkLog,
    first_reminder: StoreKeys,
    artifacts: Path,
) -> None:
    network.stub_host(SHOP)  # the product image in the email is the shop's
    page.goto(f"{live_server.url}/outbox")
    rows = page.locator("tr:has(td)")
    expect(rows).to_have_count(1)
    expect(rows.locator("td").nth(1)).to_have_text("ann@example.com")
    expect(rows.locator("td").nth(2)).to_have_text(SUBJECT)
    page.screenshot(path=artifacts / "outbox-list.png", full_page=True)

    mail = open_message(page, live_server)

    expect(page).to_have_title(SUBJECT)
    expect(page.locator(".meta")).to_contain_text("To: Ann <ann@example.com>")
    button = mail.get_by_role("link", name="Return to your cart")
    expect(button).to_be_visible()
    assert (button.get_attribute("href") or "").startswith(f"{live_server.url}/r/")
    expect(mail.locator(".item-name")).to_have_text("Linen shirt")
    expect(mail.locator(".item-price")).to_have_text("$39.98")
    expect(mail.locator(".total")).to_have_text("$39.98")
    expect(mail.locator(".muted").first).to_have_text("Quantity: 2 × $19.99")
    assert mail.locator("img.thumb").evaluate("img => img.naturalWidth") == 160
    page.screenshot(path=artifacts / "outbox-message.png", full_page=True)


def test_the_raw_eml_link_downloads_the_message_as_sent(
    page: Page,
    live_server: LiveServer,
    network: NetworkLog,
    first_reminder: StoreKeys,
) -> None:
    network.stub_host(SHOP)
    open_message(page, live_server)

    with page.expect_download() as download:
        page.get_by_role("link", name="raw .eml").click()

    raw = Path(download.value.path()).read_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"] == "Ann <ann@example.com>"
    assert parsed.get_content_type() == "multipart/alternative"


def test_the_restore_link_redirects_to_the_shop_with_utm_and_counts_the_click(
    page: Page,
    live_server: LiveServer,
    network: NetworkLog,
    first_reminder: StoreKeys,
) -> None:
    network.stub_host(SHOP)
    mail = open_message(page, live_server)
    # previewing in the outbox is not the shopper opening it: the pixel is left out
    assert cart(live_server, first_reminder)["messages"][0]["status"] == "sent"

    with page.expect_request(lambda r: r.url.startswith(f"https://{SHOP}/")) as shop:
        mail.get_by_role("link", name="Return to your cart").click()

    hop = shop.value
    assert hop.url == (
        "https://acme.test/cart/cart-1?utm_source=cartback&utm_medium=email"
        "&utm_campaign=cart_recovery_step_1"
    )
    assert hop.is_navigation_request()
    assert hop.redirected_from is not None
    assert hop.redirected_from.url.startswith(f"{live_server.url}/r/")
    body = cart(live_server, first_reminder)
    assert body["messages"][0]["status"] == "clicked"
    assert [e["kind"] for e in body["timeline"]].count("message.clicked") == 1


def test_the_unsubscribe_page_asks_first_and_the_button_unsubscribes(
    page: Page,
    live_server: LiveServer,
    network: NetworkLog,
    first_reminder: StoreKeys,
    artifacts: Path,
) -> None:
    network.stub_host(SHOP)
    mail = open_message(page, live_server)
    link = mail.get_by_role("link", name="Unsubscribe").get_attribute("href")
    assert link is not None and link.startswith(f"{live_server.url}/u/")

    page.goto(link)

    expect(page.get_by_role("heading")).to_have_text("Unsubscribe from Acme Shoes?")
    expect(page.locator("main")).to_contain_text("ann@example.com")
    button = page.get_by_role("button", name="Unsubscribe")
    expect(button).to_be_visible()
    page.screenshot(path=artifacts / "unsubscribe-page.png", full_page=True)
    journey = cart(live_server, first_reminder)["journeys"][0]
    assert (journey["status"], journey["exit_reason"]) == ("active", None)

    button.click()

    expect(page.get_by_role("heading")).to_have_text("You are unsubscribed")
    expect(page.locator("main")).to_contain_text("Acme Shoes will not email you")
    page.screenshot(path=artifacts / "unsubscribed.png", full_page=True)
    journey = cart(live_server, first_reminder)["journeys"][0]
    assert (journey["status"], journey["exit_reason"]) == ("exited", "unsubscribed")


def test_the_unsubscribe_button_is_reached_with_tab_and_enter_submits(
    page: Page,
    live_server: LiveServer,
    network: NetworkLog,
    first_reminder: StoreKeys,
    artifacts: Path,
) -> None:
    network.stub_host(SHOP)
    mail = open_message(page, live_server)
    link = mail.get_by_role("link", name="Unsubscribe").get_attribute("href")
    assert link is not None
    page.goto(link)

    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Unsubscribe")).to_be_focused()
    page.screenshot(path=artifacts / "unsubscribe-focused.png")
    assert cart(live_server, first_reminder)["journeys"][0]["status"] == "active"
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading")).to_have_text("You are unsubscribed")
    journey = cart(live_server, first_reminder)["journeys"][0]
    assert (journey["status"], journey["exit_reason"]) == ("exited", "unsubscribed")


def test_the_api_docs_render_swagger_ui_from_this_machine_only(
    page: Page, live_server: LiveServer, network: NetworkLog, artifacts: Path
) -> None:
    page.goto(f"{live_server.url}/docs")

    expect(page.locator(".opblock-summary-path", has_text="/v1/events").first).to_be_visible()
    page.screenshot(path=artifacts / "docs.png")
    assert any(url.endswith(".js") for url in network.urls)
    assert any(url.endswith(".css") for url in network.urls)
    assert network.hosts() == {"127.0.0.1"}
    assert network.stubbed_hosts == set()
