"""Message content: typed render contexts, money formatting and sandboxed built-in templates
(email, and the short channels: SMS, Telegram, push, WhatsApp parameters).

Nothing here knows about stores, carts or contacts as stored: callers pass plain dataclasses.
"""

from cartback.content.context import (
    EmailContext,
    ItemView,
    StoreInfo,
    build_items,
    items_total_minor,
)
from cartback.content.money import format_money, minor_to_decimal
from cartback.content.render import (
    MAX_OUTPUT_BYTES,
    EmailRenderer,
    RenderedEmail,
    RenderError,
    inline_css,
)
from cartback.content.short import PushText, ShortContext, ShortRenderer, TelegramText

__all__ = [
    "MAX_OUTPUT_BYTES",
    "EmailContext",
    "EmailRenderer",
    "ItemView",
    "PushText",
    "RenderError",
    "RenderedEmail",
    "ShortContext",
    "ShortRenderer",
    "StoreInfo",
    "TelegramText",
    "build_items",
    "format_money",
    "inline_css",
    "items_total_minor",
    "minor_to_decimal",
]
