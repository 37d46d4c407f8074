"""Telling bots from shoppers, so that junk carts stay out of journeys and stats.

A request is a bot's when any of these holds (the reason is what ``junk_reason`` says):

==================  ==========================================================================
reason              signal
==================  ==========================================================================
bot_user_agent      no User-Agent, or one of a known crawler, scraper or HTTP library
                    (``crawlerdetect``: the maintained pattern list of JayBizzle's
                    CrawlerDetect, e.g. Googlebot, curl, python-requests)
headless            a headless browser says so in its User-Agent (``HeadlessChrome``,
                    ``PhantomJS``, ``SlimerJS``)
webdriver           the page is driven by automation: the snippet reports
                    ``navigator.webdriver`` as ``"webdriver": true``
impossible_speed    more than ``snippet.max_cart_updates_per_second`` cart updates within one
                    second from one visitor, or a checkout less than a second after the
                    visitor's first event when that was a product view (no person gets from
                    a product page to the checkout that fast)
disposable_email    an email at a throw-away domain (``disposable-email-domains``, the
                    community-maintained blocklist), subdomains included
==================  ==========================================================================

Bots are answered exactly like shoppers (``204``): telling them would teach them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]  # no type information
from disposable_email_domains import blocklist

BOT_USER_AGENT = "bot_user_agent"
HEADLESS = "headless"
WEBDRIVER = "webdriver"
IMPOSSIBLE_SPEED = "impossible_speed"
DISPOSABLE_EMAIL = "disposable_email"

_HEADLESS_MARKERS = ("headlesschrome", "phantomjs", "slimerjs")
# thread-safe: its only state is an LRU cache of answers (and a last-match we never read)
_crawlers = CrawlerDetect()
# a checkout this soon after a product view is not a person's
MIN_VIEW_TO_CHECKOUT = timedelta(seconds=1)


def request_junk(user_agent: str | None, *, webdriver: bool) -> str | None:
    """Why a request is a bot's from what it says about itself, or None."""
    agent = (user_agent or "").strip()
    if not agent:
        return BOT_USER_AGENT
    if any(marker in agent.lower() for marker in _HEADLESS_MARKERS):
        return HEADLESS
    if webdriver:
        return WEBDRIVER
    if _crawlers.is_crawler(agent[:1000]):
        return BOT_USER_AGENT
    return None


def is_disposable(email: str) -> bool:
    """``a@mailinator.com`` and ``a@x.mailinator.com`` are; ``a@gmail.com`` is not."""
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    labels = domain.split(".")
    return any(".".join(labels[i:]) in blocklist for i in range(len(labels) - 1))


def too_fast_to_checkout(first_event_at: datetime, first_was_view: bool, at: datetime) -> bool:
    return first_was_view and first_event_at <= at < first_event_at + MIN_VIEW_TO_CHECKOUT
