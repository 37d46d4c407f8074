"""Event in, email out, order in, cart recovered: the real processes, a real SMTP server
on loopback. Work is made due at once by backdating the cart, never by waiting."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from acceptance_harness import Cartback, Server, StoreKeys, hours_ago, wait_for

from support.factories import cart_updated, item, order_placed
from support.smtp import SmtpSink

pytestmark = pytest.mark.slow

SENDER = "hello@acme.test"


def make_store(cartback: Cartback) -> StoreKeys:
    return cartback.create_store(
        "Acme Shoes", sender_email=SENDER, url="https://acme.test", currency="USD"
    )


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def tracked_link(message: EmailMessage, server: Server, path: str) -> str:
    found = re.search(rf"{re.escape(server.base_url)}/{path}/[A-Za-z0-9_\-.]+", html_of(message))
    assert found, f"no {server.base_url}/{path}/ link in the email"
    return found.group(0).removeprefix(server.base_url)


def abandon_a_cart(server: Server, store: StoreKeys) -> None:
    """A cart last touched two hours ago: abandoned at once, its 1 h step due at once
    (steps are measured from abandonment)."""
    server.post_events(
        store,
        cart_updated(
            at=hours_ago(2), items=[item("TEE-1", price=1999, quantity=2, name="Linen shirt")]
        ),
    )


def assert_reminder_then_recovery(
    cartback: Cartback, server: Server, store: StoreKeys, sink: SmtpSink
) -> None:
    abandon_a_cart(server, store)

    received = wait_for(
        lambda: sink.received, what="the first reminder at the sink", alive=cartback.check_alive
    )
    assert len(received) == 1
    email = received[0]
    assert email.get_content_type() == "multipart/alternative"
    assert email["From"].addresses[0].addr_spec == SENDER
    assert email["To"].addresses[0].addr_spec == "ann@example.com"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(rf"<{re.escape(server.base_url)}/u/[^>]+>", str(email["List-Unsubscribe"]))
    assert "Linen shirt" in html_of(email)

    restore = server.get(tracked_link(email, server, "r"), follow_redirects=False)
    assert restore.status_code == 302
    assert restore.headers["location"] == (
        "https://acme.test/cart/cart-1?utm_source=cartback&utm_medium=email"
        "&utm_campaign=cart_recovery_step_1"
    )

    server.post_events(store, order_placed(at=hours_ago(0), total=3998))
    body = wait_for(
        lambda: (c := server.cart(store))["status"] == "recovered" and c,
        what="the cart to be recovered",
        alive=cartback.check_alive,
    )
    assert body["journeys"][0]["exit_reason"] == "purchased"
    assert [m["status"] for m in body["messages"]] == ["clicked"]
    assert len(sink.received) == 1


def test_run_sends_the_reminder_and_an_order_recovers_the_cart(
    cartback: Cartback, smtp_sink: SmtpSink
) -> None:
    store = make_store(cartback)
    server = cartback.serve("run", smtp_url=smtp_sink.url)

    assert_reminder_then_recovery(cartback, server, store, smtp_sink)

    stats = server.stats(store)
    assert (stats["carts_recovered"], stats["emails_sent"]) == (1, 1)
    assert stats["recovered_revenue"] == {"USD": 3998}


def test_run_without_smtp_captures_the_reminder_in_the_outbox(cartback: Cartback) -> None:
    store = make_store(cartback)
    server = cartback.serve("run", smtp_url=None)

    abandon_a_cart(server, store)

    listing = wait_for(
        lambda: "ann@example.com" in (r := server.get("/outbox")).text and r,
        what="the reminder in the outbox",
        alive=cartback.check_alive,
    )
    assert listing.status_code == 200
    links = re.findall(r"href='/outbox/([A-Za-z0-9_\-]+)'", listing.text)
    assert len(links) == 1
    shown = server.get(f"/outbox/{links[0]}")
    assert shown.status_code == 200
    assert "ann@example.com" in shown.text
    assert SENDER in shown.text
    body = server.get(f"/outbox/{links[0]}/html")
    assert "Linen shirt" in body.text
    assert [m["status"] for m in server.cart(store)["messages"]] == ["sent"]


def test_serve_and_a_separate_worker_share_the_work_through_the_database(
    cartback: Cartback, smtp_sink: SmtpSink
) -> None:
    store = make_store(cartback)
    server = cartback.serve("serve", smtp_url=smtp_sink.url)
    cartback.spawn("worker", smtp_url=smtp_sink.url, base_url=server.base_url)

    assert_reminder_then_recovery(cartback, server, store, smtp_sink)
