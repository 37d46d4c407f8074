"""Store platforms' own webhooks in: Shopify, WooCommerce, and any other platform through
a field mapping. Each platform module is pure — verify the raw body, map the payload to
our events (``cartback.ingest.schemas``) — and ``service`` applies them once, through
``cartback.ingest.service.apply_event``, in the caller's transaction; ``api`` holds the
routes."""

from cartback.ingest.platforms import generic, shopify, woocommerce
from cartback.ingest.platforms._common import Mapped, Ref
from cartback.ingest.platforms.service import Outcome, apply

__all__ = ["Mapped", "Outcome", "Ref", "apply", "generic", "shopify", "woocommerce"]
