"""The demo store and what it sells: fixed data, so every run tells the same story."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cartback.stores.schemas import StoreSettings

STORE_NAME = "Demo Outfitters"
STORE_URL = "https://demo.cartback.local"
CURRENCY = "EUR"
LOCALE = "en"

STORE_SETTINGS = StoreSettings(
    locale=LOCALE,
    currency=CURRENCY,
    timezone="Europe/Berlin",
    url=STORE_URL,
    sender_email="hello@demo.cartback.local",
    sender_name=STORE_NAME,
    support_email="help@demo.cartback.local",
    # Musterstraße is German for "example street": realistic, and nobody's address.
    address="Demo Outfitters GmbH, Musterstraße 12, 10115 Berlin, Germany",
    abandon_after="30m",
)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: int  # minor units of CURRENCY

    @property
    def slug(self) -> str:
        return self.sku.lower()

    def line(self, quantity: int = 1) -> dict[str, Any]:
        """The cart item as ``POST /v1/events`` takes it."""
        return {
            "sku": self.sku,
            "name": self.name,
            "unit_price": self.price,
            "quantity": quantity,
            "url": f"{STORE_URL}/products/{self.slug}",
            "image_url": f"{STORE_URL}/images/{self.slug}.jpg",
        }


CATALOGUE: tuple[Product, ...] = (
    Product("MERINO-CREW", "Merino Crew Sweater", 8900),
    Product("WAXED-JACKET", "Waxed Canvas Jacket", 18900),
    Product("TRAIL-SHOES", "Trail Running Shoes", 12900),
    Product("ORGANIC-TEE", "Organic Cotton Tee", 2900),
    Product("WOOL-BEANIE", "Wool Beanie", 2400),
    Product("WEEKENDER", "Leather Weekender Bag", 24900),
    Product("STEEL-BOTTLE", "Insulated Steel Bottle", 3200),
    Product("RAIN-SHELL", "Packable Rain Shell", 14900),
    Product("HIKE-SOCKS", "Hiking Socks, 3-pack", 1900),
    Product("DOWN-VEST", "Lightweight Down Vest", 11900),
)

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
