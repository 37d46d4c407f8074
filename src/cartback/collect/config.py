"""``GET /v1/collect/config``: what the snippet needs from the store's settings, and the
prompts' words (built-in English, each replaceable by ``snippet.texts``)."""

from __future__ import annotations

from cartback.collect.schemas import CaptureConfig, PromptConfig, PromptsConfig, SnippetConfig
from cartback.stores.schemas import SnippetPrompt, StoreSettings

# Every key cartback.js reads; a store's ``snippet.texts`` replaces any of them. ``{days}``
# is replaced by ``snippet.price_watch_days``; ``consent`` is the store's
# ``capture.consent_text`` unless ``texts`` sets it; ``{count}`` is filled in by the snippet.
DEFAULT_TEXTS: dict[str, str] = {
    "send_cart_title": "Email me my cart",
    "send_cart_body": "Leaving already? We'll send your cart to your inbox, so you can finish "
    "your order whenever you like.",
    "send_cart_button": "Send me my cart",
    "send_cart_thanks": "Done: your cart is on its way.",
    "price_watch_title": "Tell me if the price drops",
    "price_watch_body": "We'll let you know if anything in your cart gets cheaper in the next "
    "{days} days.",
    "price_watch_button": "Watch the price",
    "price_watch_thanks": "We're watching the price for you.",
    "coupon_title": "A discount if you order now",
    "coupon_body": "Leave your email and we'll send you a discount code for your cart.",
    "coupon_button": "Send me the code",
    "coupon_thanks": "Your discount code is on its way.",
    "contact_label": "Email or phone number",
    "consent": "",
    "close": "Close",
    "invalid_contact": "Please enter a valid email address or phone number.",
    "consent_required": "Please tick the box so that we may contact you.",
    "tab_title": "({count}) Your cart is waiting",
}


def snippet_config(settings: StoreSettings) -> SnippetConfig:
    snippet = settings.snippet
    texts = {**DEFAULT_TEXTS, **snippet.texts}
    if not texts["consent"]:
        texts["consent"] = snippet.capture.consent_text
    days = str(snippet.price_watch_days)
    return SnippetConfig(
        consent_mode=snippet.consent_mode,
        capture=CaptureConfig(
            email=list(snippet.capture.email),
            phone=list(snippet.capture.phone),
            consent_checkbox=snippet.capture.consent_checkbox,
            consent_text=snippet.capture.consent_text,
        ),
        prompts=PromptsConfig(
            exit_intent=_prompt(snippet.prompts.exit_intent),
            timed=_prompt(snippet.prompts.timed),
        ),
        texts={key: text.replace("{days}", days) for key, text in texts.items()},
        locale=settings.locale,
    )


def _prompt(prompt: SnippetPrompt | None) -> PromptConfig | None:
    if prompt is None:
        return None
    return PromptConfig(
        enabled=prompt.enabled, offer=prompt.offer, delay_seconds=prompt.delay_seconds
    )
