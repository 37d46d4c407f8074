"""What the snippet's events do: visitors become contacts and their carts get journeys,
consent is kept with its proof, prompts send the cart once or watch its price, and bots'
carts stay out of journeys and stats."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from cartback.app import Runtime
from cartback.collect.models import CartEmail, PriceWatch, Visitor
from cartback.contacts.models import Consent, Contact
from cartback.core.clock import ManualClock
from cartback.flows.models import Enrollment
from cartback.ingest.models import Event
from support.factories import StoreKeys, advance, run_due
from support.snippet import CHROME, Browser, carts_of, line, problem, timeline_kinds

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def rows(runtime: Runtime, model: Any) -> list[Any]:
    with runtime.sessions() as session:
        found = list(session.scalars(select(model)))
        session.expunge_all()
        return found


def emails_to(runtime: Runtime, address: str) -> list[Any]:
    assert runtime.outbox is not None
    return [e for e in runtime.outbox.list() if e.to_address == address]


def stats(client: TestClient, store: StoreKeys) -> dict[str, Any]:
    response = client.get("/v1/stats", headers=store.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- visitors become contacts -----------------------------------------------------------------


def test_a_cart_left_before_the_email_was_typed_gets_its_journey_once_it_is_captured(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    browser.ok(browser.cart())
    advance(runtime, clock, 30 * MINUTE)
    [cart] = carts_of(runtime, browser.store)
    assert (cart.status, cart.contact_id) == ("abandoned", None)
    assert "flow.not_entered" in timeline_kinds(runtime, cart.id)
    assert rows(runtime, Enrollment) == []

    browser.ok(browser.capture("Ann@Example.com"))

    [contact] = rows(runtime, Contact)
    [cart] = carts_of(runtime, browser.store)
    [visitor] = rows(runtime, Visitor)
    assert contact.email == "ann@example.com"
    assert cart.contact_id == contact.id
    assert visitor.contact_id == contact.id
    [enrollment] = rows(runtime, Enrollment)
    assert enrollment.cart_id == cart.id
    advance(runtime, clock, HOUR)
    [reminder] = emails_to(runtime, "ann@example.com")
    assert "Linen shirt" in reminder.mime.decode(errors="replace")


def test_carts_made_after_the_capture_belong_to_the_contact_and_enter_the_journey(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    browser.ok(browser.capture())
    browser.ok(browser.cart(cart_id="platform-cart-9"))

    advance(runtime, clock, 30 * MINUTE)

    [contact] = rows(runtime, Contact)
    [cart] = carts_of(runtime, browser.store)
    assert (cart.external_id, cart.contact_id, cart.status) == (
        "platform-cart-9",
        contact.id,
        "abandoned",
    )
    [enrollment] = rows(runtime, Enrollment)
    assert enrollment.cart_id == cart.id


def test_a_cart_without_an_id_is_the_visitors_own(browser: Browser, runtime: Runtime) -> None:
    browser.ok(browser.cart())
    browser.ok(browser.event("checkout.started", cart={}))

    [cart] = carts_of(runtime, browser.store)
    assert cart.external_id == f"v:{browser.visitor}"
    assert cart.stage == "checkout"


def test_an_event_sent_twice_is_applied_once(browser: Browser, runtime: Runtime) -> None:
    update = browser.cart()

    browser.ok(update)
    browser.ok(update)

    [cart] = carts_of(runtime, browser.store)
    assert timeline_kinds(runtime, cart.id).count("event.cart.updated") == 1
    assert len(rows(runtime, Event)) == 1


def test_a_browser_clock_hours_behind_does_not_make_a_live_cart_look_abandoned(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    browser.ok(
        browser.event("cart.updated", at=clock.now() - 3 * HOUR, cart=browser.cart()["cart"])
    )

    run_due(runtime)

    [cart] = carts_of(runtime, browser.store)
    assert cart.last_activity_at == clock.now()
    assert cart.status == "active"


# --- consent ----------------------------------------------------------------------------------


def test_consent_is_kept_on_the_ledger_with_ip_user_agent_and_the_text_shown(
    browser: Browser, runtime: Runtime
) -> None:
    browser.ok(
        browser.capture(
            phone="+1 (415) 555-2671",
            consent={"email": True, "sms": True},
            consent_text="Text me about my cart.",
        )
    )

    [contact] = rows(runtime, Contact)
    assert contact.phone == "+14155552671"
    consents = sorted(rows(runtime, Consent), key=lambda c: c.channel)
    assert [(c.channel, c.granted, c.source) for c in consents] == [
        ("email", True, "snippet_field"),
        ("sms", True, "snippet_field"),
    ]
    assert consents[0].proof == {
        "ip": "testclient",
        "user_agent": CHROME,
        "text": "Text me about my cart.",
    }


def test_an_unticked_box_records_nothing_but_withdraws_a_consent_given_before(
    browser: Browser, runtime: Runtime
) -> None:
    browser.ok(browser.capture(consent={"email": False}))
    assert rows(runtime, Consent) == []
    assert len(rows(runtime, Contact)) == 1  # default mode: the email is kept all the same

    browser.ok(browser.capture(consent={"email": True}))
    browser.ok(browser.capture(consent={"email": False}))

    assert [c.granted for c in sorted(rows(runtime, Consent), key=lambda c: c.id)] == [True, False]


def test_eu_mode_refuses_a_capture_without_consent_and_keeps_nothing(
    client: TestClient, eu_shop: StoreKeys, clock: ManualClock, runtime: Runtime
) -> None:
    browser = Browser(client, eu_shop, clock)

    response = browser.post(browser.capture())

    body = problem(response, 422, "consent_required")
    assert body["errors"][0]["field"] == "events[0].consent.email"
    assert rows(runtime, Contact) == []
    assert rows(runtime, Event) == []


def test_eu_mode_keeps_only_the_address_with_consent(
    client: TestClient, eu_shop: StoreKeys, clock: ManualClock, runtime: Runtime
) -> None:
    browser = Browser(client, eu_shop, clock)

    browser.ok(browser.capture(phone="+14155552671", consent={"email": True, "sms": False}))

    [contact] = rows(runtime, Contact)
    assert (contact.email, contact.phone) == ("ann@example.com", None)
    [consent] = rows(runtime, Consent)
    assert (consent.channel, consent.granted, consent.proof["text"]) == (
        "email",
        True,
        "Email me my cart.",
    )


def test_eu_mode_withdrawal_applies_to_a_known_contact_only(
    client: TestClient, eu_shop: StoreKeys, clock: ManualClock, runtime: Runtime
) -> None:
    stranger = Browser(client, eu_shop, clock)
    stranger.ok(stranger.capture("bob@example.com", consent={"email": False}))
    assert rows(runtime, Contact) == []

    ann = Browser(client, eu_shop, clock)
    ann.ok(ann.capture(consent={"email": True}))
    ann.ok(ann.capture(consent={"email": False}))

    [contact] = rows(runtime, Contact)
    assert contact.email == "ann@example.com"
    assert [c.granted for c in sorted(rows(runtime, Consent), key=lambda c: c.id)] == [True, False]


# --- prompts ----------------------------------------------------------------------------------


def test_send_cart_emails_the_cart_at_once_and_only_once(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    browser.ok(browser.cart([line("TEE-1", 1999, 2)]))

    browser.ok(browser.submit("send_cart"))
    run_due(runtime)
    browser.ok(browser.submit("send_cart"))
    run_due(runtime)

    [email] = emails_to(runtime, "ann@example.com")
    assert email.subject == "Your cart at Acme Shoes"
    text = email.mime.decode(errors="replace")
    assert "Linen shirt" in text and "$39.98" in text
    assert "utm_campaign=3Dsnippet_send_cart" in text or "utm_campaign=snippet_send_cart" in text
    [sent] = rows(runtime, CartEmail)
    assert (sent.status, sent.to_address, sent.sent_at) == ("sent", "ann@example.com", clock.now())
    [cart] = carts_of(runtime, browser.store)
    kinds = timeline_kinds(runtime, cart.id)
    assert kinds.count("cart_email.requested") == 1
    assert kinds.count("cart_email.sent") == 1
    assert "cart_email.not_sent" in kinds


def test_send_cart_to_a_suppressed_address_sends_nothing(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    from cartback.contacts.service import suppress
    from cartback.core.db import transaction

    with transaction(runtime.sessions) as session:
        suppress(
            session,
            store_id=browser.store.id,
            channel="email",
            address="ann@example.com",
            reason="hard_bounce",
            now=clock.now(),
        )
    browser.ok(browser.cart())

    browser.ok(browser.submit("send_cart"))
    run_due(runtime)

    assert emails_to(runtime, "ann@example.com") == []
    [failed] = rows(runtime, CartEmail)
    assert (failed.status, failed.error_code) == ("failed", "suppressed")


def test_price_watch_keeps_the_carts_prices_for_the_stores_days(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    browser.ok(browser.cart([line("TEE-1", 1999), line("CAP-2", 1500)]))

    browser.ok(browser.submit("price_watch", consent={"email": True}))

    [watch] = rows(runtime, PriceWatch)
    [cart] = carts_of(runtime, browser.store)
    [contact] = rows(runtime, Contact)
    assert (watch.cart_id, watch.contact_id, watch.channel, watch.currency) == (
        cart.id,
        contact.id,
        "email",
        "USD",
    )
    assert watch.items == [
        {"sku": "TEE-1", "name": "Linen shirt", "unit_price": 1999},
        {"sku": "CAP-2", "name": "Linen shirt", "unit_price": 1500},
    ]
    assert watch.until == clock.now() + timedelta(days=14)
    assert "price_watch.started" in timeline_kinds(runtime, cart.id)


def test_price_watch_without_a_cart_watches_the_product_last_viewed(
    browser: Browser, runtime: Runtime
) -> None:
    product = {"sku": "BAG-7", "name": "Tote", "price": 4500, "currency": "EUR"}
    browser.ok(browser.event("product.viewed", product=product))

    browser.ok(
        browser.submit("price_watch", email=None, phone="+14155552671", consent={"sms": True})
    )

    [watch] = rows(runtime, PriceWatch)
    assert (watch.cart_id, watch.channel, watch.currency, watch.items) == (
        None,
        "sms",
        "EUR",
        [{"sku": "BAG-7", "name": "Tote", "unit_price": 4500}],
    )


def test_price_watch_needs_consent(browser: Browser, runtime: Runtime) -> None:
    browser.ok(browser.cart())

    response = browser.post(browser.submit("price_watch"))

    problem(response, 422, "consent_required")
    assert rows(runtime, PriceWatch) == []
    assert rows(runtime, Contact) == []


def test_prompts_shown_dismissed_and_a_coupon_request_are_on_the_carts_timeline(
    browser: Browser, runtime: Runtime
) -> None:
    browser.ok(browser.cart())

    browser.ok(
        browser.event("prompt.shown", prompt="timed", offer="coupon"),
        browser.event("prompt.dismissed", prompt="timed", offer="coupon"),
        browser.submit("coupon"),
    )

    [cart] = carts_of(runtime, browser.store)
    kinds = timeline_kinds(runtime, cart.id)
    assert [k for k in kinds if k.startswith(("prompt.", "coupon."))] == [
        "prompt.shown",
        "prompt.dismissed",
        "prompt.submitted",
        "coupon.requested",
    ]


# --- bots -------------------------------------------------------------------------------------


def _left_carts(
    runtime: Runtime, clock: ManualClock, browsers: list[Browser], *, email: str | None = None
) -> None:
    for i, b in enumerate(browsers):
        b.ok(b.cart())
        b.ok(b.capture(email or f"shopper{i}@example.com"))
    advance(runtime, clock, 30 * MINUTE)


def test_a_known_bot_is_answered_204_but_its_cart_never_enters_a_journey_or_the_stats(
    runtime: Runtime,
    clock: ManualClock,
    client: TestClient,
    shop: StoreKeys,
    new_browser: Callable[..., Browser],
) -> None:
    human = new_browser()
    bot = new_browser(
        user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    )

    _left_carts(runtime, clock, [human, bot])

    junk = {c.contact_id is None: c for c in carts_of(runtime, shop)}
    assert junk[True].junk_reason == "bot_user_agent"
    assert junk[False].junk_reason is None
    assert [c.email for c in rows(runtime, Contact)] == ["shopper0@example.com"]
    [enrollment] = rows(runtime, Enrollment)
    assert enrollment.cart_id == junk[False].id
    assert "cart.junk" in timeline_kinds(runtime, junk[True].id)
    assert stats(client, shop)["carts_abandoned"] == 1


def test_headless_browsers_and_webdriver_are_junk(
    runtime: Runtime, clock: ManualClock, new_browser: Callable[..., Browser]
) -> None:
    headless = new_browser(user_agent=CHROME.replace("Chrome/", "HeadlessChrome/"))
    driven = new_browser(webdriver=True)

    _left_carts(runtime, clock, [headless, driven])

    assert sorted(str(c.junk_reason) for c in carts_of(runtime, headless.store)) == [
        "headless",
        "webdriver",
    ]
    assert rows(runtime, Enrollment) == []


def test_a_disposable_email_makes_the_visitor_junk_and_keeps_no_contact(
    runtime: Runtime, clock: ManualClock, client: TestClient, browser: Browser, shop: StoreKeys
) -> None:
    _left_carts(runtime, clock, [browser], email="ann@mailinator.com")

    [cart] = carts_of(runtime, shop)
    assert cart.junk_reason == "disposable_email"
    assert rows(runtime, Contact) == []
    [visitor] = rows(runtime, Visitor)
    assert visitor.junk_reason == "disposable_email"
    assert rows(runtime, Enrollment) == []
    assert stats(client, shop)["carts_abandoned"] == 0


def test_impossible_speed_is_junk(browser: Browser, runtime: Runtime, clock: ManualClock) -> None:
    start = clock.now()
    updates = [
        browser.event(
            "cart.updated",
            at=start + timedelta(milliseconds=50 * i),
            cart=browser.cart([line(quantity=i + 1)])["cart"],
        )
        for i in range(11)
    ]

    browser.ok(*updates)

    [cart] = carts_of(runtime, browser.store)
    assert cart.junk_reason == "impossible_speed"


def test_ten_cart_updates_in_a_second_is_a_quick_shopper_not_a_bot(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    start = clock.now() - timedelta(seconds=1)
    browser.ok(
        *[
            browser.event(
                "cart.updated",
                at=start + timedelta(milliseconds=90 * i),
                cart=browser.cart([line(quantity=i + 1)])["cart"],
            )
            for i in range(10)
        ]
    )

    [cart] = carts_of(runtime, browser.store)
    assert cart.junk_reason is None


def test_a_checkout_a_moment_after_the_first_product_view_is_junk(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    start = clock.now() - timedelta(seconds=1)
    product = {"sku": "TEE-1", "name": "Linen shirt", "price": 1999, "currency": "USD"}

    browser.ok(
        browser.event("product.viewed", at=start, product=product),
        browser.event("checkout.started", at=start + timedelta(milliseconds=300), cart={}),
    )

    [cart] = carts_of(runtime, browser.store)
    assert cart.junk_reason == "impossible_speed"


def test_a_visitor_found_to_be_a_bot_later_takes_its_cart_out_of_its_journey(
    browser: Browser, runtime: Runtime, clock: ManualClock
) -> None:
    _left_carts(runtime, clock, [browser])
    [enrollment] = rows(runtime, Enrollment)
    assert enrollment.status == "active"

    browser.webdriver = True
    browser.ok(
        browser.event(
            "product.viewed", product={"sku": "A", "name": "A", "price": 1, "currency": "USD"}
        )
    )

    [enrollment] = rows(runtime, Enrollment)
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "junk")
    advance(runtime, clock, 2 * HOUR)
    assert emails_to(runtime, "shopper0@example.com") == []
