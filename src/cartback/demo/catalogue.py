"""The demo store and what it sells: fixed data, so every run tells the same story.

The store's pages (front, products, carts and product images) are served by the demo's
own server (see store.py), so every link and image in the demo's email works offline:
URLs here are built from the demo's ``base_url`` (``http://127.0.0.1:<port>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cartback.stores.schemas import (
    SnippetCapture,
    SnippetPrompt,
    SnippetPrompts,
    SnippetSettings,
    StoreSettings,
)

STORE_NAME = "Demo Outfitters"
CURRENCY = "EUR"
LOCALE = "en"
STORE_PATH = "/demo"  # the demo store's pages, on the demo's own server
# The checkout's consent box: a Berlin shop, so the snippet runs in EU mode and captures
# the email typed at checkout only once the shopper ticks it.
CONSENT_TEXT = "Email me a reminder if I leave items in my cart. I can unsubscribe at any time."


def store_url(base_url: str) -> str:
    """The demo store's front page: ``http://127.0.0.1:<port>/demo/``."""
    return f"{base_url}{STORE_PATH}/"


def cart_url(base_url: str, cart_id: str) -> str:
    """Where a reminder's restore link lands: the demo store's page for the cart."""
    return f"{base_url}{STORE_PATH}/cart/{cart_id}"


def store_settings(base_url: str) -> StoreSettings:
    return StoreSettings(
        locale=LOCALE,
        currency=CURRENCY,
        timezone="Europe/Berlin",
        url=store_url(base_url),
        sender_email="hello@demo.cartback.local",
        sender_name=STORE_NAME,
        support_email="help@demo.cartback.local",
        # Musterstraße is German for "example street": realistic, and nobody's address.
        address="Demo Outfitters GmbH, Musterstraße 12, 10115 Berlin, Germany",
        abandon_after="30m",
        snippet=SnippetSettings(
            consent_mode="eu",
            capture=SnippetCapture(
                email=["#email"],
                phone=["#phone"],
                consent_checkbox="#consent",
                consent_text=CONSENT_TEXT,
            ),
            # "Email me my cart" when the pointer leaves through the top, after 5 s
            prompts=SnippetPrompts(exit_intent=SnippetPrompt(offer="send_cart", delay_seconds=5)),
        ),
    )


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: int  # minor units of CURRENCY
    colour: str  # the product image's tile, distinct per product

    @property
    def slug(self) -> str:
        return self.sku.lower()

    @property
    def initials(self) -> str:
        """``Merino Crew Sweater`` -> ``MC``: what its image shows."""
        return "".join(word[0] for word in self.name.split()[:2]).upper()

    @property
    def page_path(self) -> str:
        return f"{STORE_PATH}/p/{self.slug}"

    @property
    def image_path(self) -> str:
        return f"{STORE_PATH}/img/{self.slug}.svg"

    def line(self, base_url: str, quantity: int = 1) -> dict[str, Any]:
        """The cart item as ``POST /v1/events`` takes it, linking to the demo's server."""
        return {
            "sku": self.sku,
            "name": self.name,
            "unit_price": self.price,
            "quantity": quantity,
            "url": f"{base_url}{self.page_path}",
            "image_url": f"{base_url}{self.image_path}",
        }


CATALOGUE: tuple[Product, ...] = (
    Product("MERINO-CREW", "Merino Crew Sweater", 8900, "#7c3aed"),
    Product("WAXED-JACKET", "Waxed Canvas Jacket", 18900, "#4d7c0f"),
    Product("TRAIL-SHOES", "Trail Running Shoes", 12900, "#ea580c"),
    Product("ORGANIC-TEE", "Organic Cotton Tee", 2900, "#16a34a"),
    Product("WOOL-BEANIE", "Wool Beanie", 2400, "#dc2626"),
    Product("WEEKENDER", "Leather Weekender Bag", 24900, "#92400e"),
    Product("STEEL-BOTTLE", "Insulated Steel Bottle", 3200, "#0891b2"),
    Product("RAIN-SHELL", "Packable Rain Shell", 14900, "#2563eb"),
    Product("HIKE-SOCKS", "Hiking Socks, 3-pack", 1900, "#db2777"),
    Product("DOWN-VEST", "Lightweight Down Vest", 11900, "#0f766e"),
)
BY_SLUG = {product.slug: product for product in CATALOGUE}

FIRST_NAMES = (
    "Ann", "Ben", "Chloé", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Katarzyna", "Liam", "Maya", "Noah", "Olivia", "Pablo", "Quinn", "Rasa", "Sofia", "Tomás",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Andersen", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "García", "Haddad", "Ivanova",
    "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Petrauskas", "Rossi",
    "Schmidt", "Tanaka", "Varga", "Weber", "Yilmaz",
)  # fmt: skip
TIMEZONES = (
    "Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Vilnius", "Europe/London",
    "Europe/Amsterdam", "America/New_York",
)  # fmt: skip


def email_address(first_name: str, last_name: str, number: int) -> str:
    """``Chloé``, ``O'Brien``, 7 -> ``chloe.obrien7@example.com`` (ASCII, always valid)."""
    import unicodedata

    def ascii_part(text: str) -> str:
        plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        return "".join(c for c in plain.lower() if c.isalnum())

    return f"{ascii_part(first_name)}.{ascii_part(last_name)}{number}@example.com"
