"""Short-channel copy: SMS within two segments in every language whatever the names, the
link intact, the opt-out line exactly when asked; Telegram, push and WhatsApp parameters;
keyword replies; locale fallback."""

from __future__ import annotations

import doctest
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartback.channels.whatsapp import OutgoingWhatsApp, template_body
from cartback.content import (
    PushText,
    RenderError,
    ShortContext,
    ShortRenderer,
    TelegramText,
    format_money,
    short,
)
from cartback.content.sms import encode_info, is_gsm7, non_gsm_characters

LANGUAGES = ["en", "ru", "kk", "uz", "fa", "lt"]
TEMPLATES = ["reminder", "help", "last_chance"]
LINK = "https://go.shop.kz/r/AbC123xyz012345678x"
FSI, PDI = "\u2068", "\u2069"
CURRENCY = {"en": "USD", "ru": "RUB", "kk": "KZT", "uz": "UZS", "fa": "IRR", "lt": "EUR"}
# A store, a first name and an item as a shop in each market would have them.
TYPICAL = {
    "en": ("Linen & Co", "Ana", "Linen shirt"),
    "ru": ("Цветы", "Анна", "Букет роз"),
    "kk": ("Гүлдер", "Айгүл", "Қызғалдақ"),
    "uz": ("Gullar olami", "Oʻlmas", "Atirgul guldastasi"),
    "fa": ("گل‌فروشی", "سارا", "دسته گل"),
    "lt": ("Linų namai", "Ona", "Marškiniai"),
}
OPT_OUT = {
    "en": "Reply STOP to opt out",
    "ru": "Отписаться: ответьте STOP",
    "kk": "Бас тарту: STOP жіберіңіз",
    "uz": "Obunani bekor qilish: STOP yuboring",
    "fa": "لغو: ارسال STOP",
    "lt": "Atsisakyti: siųskite STOP",
}
# Store names of the maximum length (20) in each script; all in the BMP.
LONG_STORES = {
    "latin": "Linen & Company Shop",
    "cyrillic": "Магазин цветов Ромаш",
    "kazakh": "Гүлдер әлемі дүкені!",
    "persian": "گل‌فروشی بارانِ بهار",
    "lithuanian": "Lietuviškų linų nama",
    "uzbek": "Oʻzbek gʻaroyib doʻko",
    "extension": "Store [EU] ~ {best}!",
}
LONG_NAMES = {
    "latin": "Maximilian-Jose",
    "cyrillic": "Александра-Мари",
    "persian": "محمدحسین‌رضایی",
    "lithuanian": "Ąžuolė-Žygimant",
}
LONG_ITEM = "Linen shirt with long sleeves, blue and white stripes [L] €49"


AS_TYPICAL = "<typical>"


def make_context(
    locale: str = "en",
    *,
    store: str = AS_TYPICAL,
    first_name: str | None = AS_TYPICAL,
    item: str | None = AS_TYPICAL,
    total: str = AS_TYPICAL,
    item_count: int = 3,
) -> ShortContext:
    """A context in ``locale`` with the typical store, name and item of its language."""
    language = locale[:2]
    typical = TYPICAL.get(language, TYPICAL["en"])
    return ShortContext(
        store_name=typical[0] if store == AS_TYPICAL else store,
        first_name=typical[1] if first_name == AS_TYPICAL else first_name,
        locale=locale,
        total=format_money(4950, CURRENCY.get(language, "USD"), language)
        if total == AS_TYPICAL
        else total,
        item_count=item_count,
        first_item=typical[2] if item == AS_TYPICAL else item,
        link=LINK,
        step_index=1,
    )


@pytest.fixture(scope="module")
def renderer() -> ShortRenderer:
    return ShortRenderer()


def first_line(sms: str) -> str:
    return sms.split("\n")[0]


def unisolated(text: str) -> str:
    return text.replace(FSI, "").replace(PDI, "")


# --- SMS: what it says --------------------------------------------------------------


def test_english_reminder(renderer: ShortRenderer) -> None:
    sms = renderer.sms("reminder", make_context(), opt_out=True)

    assert sms == (
        "Linen & Co: Hi Ana, did you forget something? Still in your cart: Linen shirt\n"
        f"{LINK}\n"
        "Reply STOP to opt out"
    )
    assert encode_info(sms).encoding == "GSM-7"
    assert encode_info(sms).segments == 1


@pytest.mark.parametrize(
    ("language", "template", "expected"),
    [
        ("ru", "reminder", "Цветы: Анна, Вы ничего не забыли? В корзине: Букет роз"),
        ("ru", "help", "Цветы: Анна, есть вопросы? Просто ответьте на это SMS."),
        ("ru", "last_chance", "Цветы: Анна, последнее напоминание! В корзине: Букет роз"),
        ("kk", "reminder", "Гүлдер: Айгүл, бірдеңе ұмыттыңыз ба? Себетіңізде: Қызғалдақ"),
        ("uz", "help", "Gullar olami: O'lmas, savollaringiz bormi? Javob yozing, yordam beramiz."),
        ("fa", "reminder", "گل‌فروشی: سارا عزیز، چیزی را فراموش نکرده‌اید؟ در سبد خرید: دسته گل"),
        ("lt", "last_chance", "Linų namai: Ona, paskutinis priminimas! Krepšelyje: Marškiniai"),
    ],
)
def test_copy_in_other_languages(
    renderer: ShortRenderer, language: str, template: str, expected: str
) -> None:
    sms = renderer.sms(template, make_context(language), opt_out=True)

    assert sms == f"{expected}\n{LINK}\n{OPT_OUT[language]}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_a_typical_sms_keeps_the_name_and_the_item(
    renderer: ShortRenderer, language: str, template: str
) -> None:
    ctx = make_context(language)

    line = first_line(renderer.sms(template, ctx, opt_out=True))

    assert line.startswith(f"{ctx.store_name}: ")
    assert ctx.first_name is not None
    assert ctx.first_name.replace("ʻ", "'") in line
    if template != "help":  # the help step is about questions, not the item
        assert ctx.first_item is not None
        assert line.endswith(ctx.first_item)


@pytest.mark.parametrize("language", LANGUAGES)
def test_without_a_name_or_an_item_the_copy_reads_on_its_own(
    renderer: ShortRenderer, language: str
) -> None:
    ctx = make_context(language, first_name=None, item=None)

    for template in TEMPLATES:
        line = first_line(renderer.sms(template, ctx, opt_out=False))

        assert line.startswith(f"{ctx.store_name}: ")
        assert "None" not in line
        assert "  " not in line
        assert not re.search(r"\s[,.!?،؟]", line)


def test_the_item_is_cut_before_the_name_is_dropped(renderer: ShortRenderer) -> None:
    ctx = make_context("ru", item="Букет из 25 красных роз «Нежность» с доставкой")

    sms = renderer.sms("reminder", ctx, opt_out=True)

    assert first_line(sms) == "Цветы: Анна, Вы ничего не забыли? В корзине: Букет из 25 красных…"
    assert encode_info(sms).segments == 2


def test_the_name_is_dropped_when_even_a_cut_item_does_not_fit(renderer: ShortRenderer) -> None:
    ctx = make_context(
        "ru", store=LONG_STORES["cyrillic"], first_name="Александра-Мари", item="Букет роз"
    )

    sms = renderer.sms("reminder", ctx, opt_out=True)

    assert first_line(sms) == "Магазин цветов Ромаш: Вы ничего не забыли? В корзине: Букет роз"


def test_a_cut_in_a_gsm_message_ends_in_three_dots(renderer: ShortRenderer) -> None:
    ctx = make_context("en", store=LONG_STORES["latin"], item=LONG_ITEM)

    sms = renderer.sms("reminder", ctx, opt_out=True)

    assert first_line(sms).endswith("cart: Linen shirt with long sleeves, blue and...")
    assert encode_info(sms).encoding == "GSM-7"


def test_a_cut_in_a_ucs2_message_ends_in_an_ellipsis(renderer: ShortRenderer) -> None:
    ctx = make_context("lt", item="Lininiai marškiniai ilgomis rankovėmis")

    line = first_line(renderer.sms("reminder", ctx, opt_out=True))

    assert line == "Linų namai: Ona, ar nieko nepamiršote? Krepšelyje: Lininiai marški…"


def test_an_emoji_is_never_cut_in_half(renderer: ShortRenderer) -> None:
    family = "👨\u200d👩\u200d👧"
    ctx = make_context("ru", item="Набор " + family * 10)

    line = first_line(renderer.sms("reminder", ctx, opt_out=True))

    shown = line.split("В корзине: ")[1].removesuffix("…")
    assert shown.removeprefix("Набор ").replace(family, "") == ""


@pytest.mark.parametrize("language", ["en", "uz"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_latin_copy_stays_gsm7(renderer: ShortRenderer, language: str, template: str) -> None:
    # Babel writes "12 500,00 soʻm" with no-break spaces and ʻ; a name may have ʻ or ’:
    # none of them may turn the SMS into UCS-2.
    ctx = make_context(language, first_name="Gʻayrat", store="Lily’s – shop")

    sms = renderer.sms(template, ctx, opt_out=True)

    assert non_gsm_characters(sms) == []
    assert first_line(sms).startswith("Lily's - shop: ")


@pytest.mark.parametrize("language", ["en", "uz"])
def test_keyword_replies_in_latin_languages_are_gsm7(
    renderer: ShortRenderer, language: str
) -> None:
    for kind in ("stop", "start", "help"):
        assert non_gsm_characters(renderer.keyword_reply(kind, language, store_name="Shop")) == []
        assert non_gsm_characters(renderer.opt_out_line(language)) == []


def test_uzbek_writes_the_okina_outside_sms(renderer: ShortRenderer) -> None:
    ctx = make_context("uz", item=None)
    texts = [renderer.telegram(t, ctx).text for t in TEMPLATES] + [
        part
        for t in TEMPLATES
        for part in (renderer.push(t, ctx).title, renderer.push(t, ctx).body)
    ]

    assert all("ʻ" in text or ("o'" not in text and "g'" not in text) for text in texts)
    assert any("doʻkon" in text for text in texts)


def test_persian_isolates_latin_text_and_leaves_persian_alone(renderer: ShortRenderer) -> None:
    ctx = make_context("fa", store="Linen & Co", first_name="سارا", item="Linen shirt")

    line = first_line(renderer.sms("reminder", ctx, opt_out=False))

    assert line == (
        f"{FSI}Linen & Co{PDI}: سارا عزیز، چیزی را فراموش نکرده‌اید؟ "
        f"در سبد خرید: {FSI}Linen shirt{PDI}"
    )


# --- SMS: the budget, for every language, template and script ------------------------

GSM_EXTENSION = "€[]{}^|~\\"
EMOJI = ["🛒", "🎁", "👍", "👍🏽", "🇱🇹", "👨\u200d👩\u200d👧", "❤️", "✅", "🌸"]
ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéèàüöäñç&'-.",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ«»",
    "kazakh": "аәбвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюяӘҒҚҢӨҰҮҺІ",
    "uzbek": "abdefghijklmnopqrstuvxyzʻʼ'ABDEFGHIJKLMNOPQRSTUVXYZ",
    "persian": "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی\u200c۰۱۲۳۴۵۶۷۸۹،؟",
    "lithuanian": "aąbcčdeęėfghiįyjklmnoprsštuųūvzžAĄBCČDEĘĖFGHIĮYJKLMNOPRSŠTUŲŪVZŽ",
}


def words(alphabet: str, extra: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(alphabet), st.just(" "), extra)
    return (
        st.lists(piece, min_size=1, max_size=max_size)
        .map("".join)
        .filter(lambda text: text.strip() != "" and len(text) <= max_size)
    )


def scripts(extra: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    return st.sampled_from(sorted(ALPHABETS)).flatmap(
        lambda script: words(ALPHABETS[script], extra, max_size)
    )


emoji = st.sampled_from(EMOJI)
stores = scripts(st.one_of(emoji, st.sampled_from(GSM_EXTENSION)), 20)
names = st.one_of(st.none(), scripts(emoji, 15))
items = st.one_of(
    st.none(),
    scripts(st.one_of(emoji, st.sampled_from(GSM_EXTENSION), st.sampled_from("0123456789")), 120),
)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
@settings(max_examples=60, deadline=None)
@given(store=stores, first_name=names, item=items, opt_out=st.booleans())
def test_sms_fits_two_segments_with_the_link_and_opt_out(
    renderer: ShortRenderer,
    language: str,
    template: str,
    store: str,
    first_name: str | None,
    item: str | None,
    opt_out: bool,
) -> None:
    ctx = make_context(language, store=store, first_name=first_name, item=item)

    sms = renderer.sms(template, ctx, opt_out=opt_out)

    assert encode_info(sms).segments <= 2
    lines = sms.split("\n")
    assert len(lines) == (3 if opt_out else 2)
    assert lines[1] == LINK
    assert sms.count(LINK) == 1
    if opt_out:
        assert lines[2] == renderer.opt_out_line(language)
    else:
        assert "STOP" not in sms
    # The store comes first, whole or (only when emoji leave no room) cut.
    shown = unisolated(lines[0]).split(": ")[0]
    cleaned = " ".join(store.replace("ʻ", "'").replace("ʼ", "'").split())
    assert shown == cleaned or (shown.endswith("…") and cleaned.startswith(shown[:-1]))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("script", sorted(LONG_STORES))
def test_a_20_character_store_name_is_never_cut(
    renderer: ShortRenderer, language: str, template: str, script: str
) -> None:
    store = LONG_STORES[script]
    for name in LONG_NAMES.values():
        ctx = make_context(language, store=store, first_name=name, item=LONG_ITEM + " 🎁")

        sms = renderer.sms(template, ctx, opt_out=True)

        assert encode_info(sms).segments <= 2
        assert unisolated(first_line(sms)).startswith(store.replace("ʻ", "'") + ": ")


def test_a_link_with_no_room_left_is_an_error(renderer: ShortRenderer) -> None:
    ctx = replace(make_context("ru"), link="https://example.com/" + "x" * 140)

    with pytest.raises(RenderError, match="cannot fit"):
        renderer.sms("reminder", ctx, opt_out=True)


@pytest.mark.parametrize("link", ["", "   ", "https://a.b/x y"])
def test_an_empty_or_broken_link_is_an_error(renderer: ShortRenderer, link: str) -> None:
    with pytest.raises(RenderError, match="link"):
        renderer.sms("reminder", replace(make_context(), link=link), opt_out=False)


def test_an_empty_store_name_is_an_error(renderer: ShortRenderer) -> None:
    ctx = make_context(store=" \n ")

    for render in (
        lambda: renderer.sms("reminder", ctx, opt_out=True),
        lambda: renderer.telegram("reminder", ctx),
        lambda: renderer.push("reminder", ctx),
        lambda: renderer.whatsapp_parameters("reminder", ctx),
    ):
        with pytest.raises(RenderError, match="store name"):
            render()


def test_newlines_and_controls_in_names_cannot_break_the_layout(renderer: ShortRenderer) -> None:
    ctx = make_context(store="Linen\n& Co", first_name="A\x1bna\x00", item="Shirt\r\n" + LINK)

    sms = renderer.sms("reminder", ctx, opt_out=True)

    assert sms.split("\n")[1:] == [LINK, "Reply STOP to opt out"]
    assert first_line(sms).startswith("Linen & Co: Hi Ana, ")


# --- locales and templates -----------------------------------------------------------


@pytest.mark.parametrize("locale", ["de", "pt-BR", "", "zz_ZZ", "not a locale!", "../en"])
def test_an_unknown_locale_gets_english(renderer: ShortRenderer, locale: str) -> None:
    english = make_context("en")
    ctx = replace(english, locale=locale)

    assert renderer.sms("reminder", ctx, opt_out=True) == renderer.sms(
        "reminder", english, opt_out=True
    )
    assert renderer.telegram("help", ctx) == renderer.telegram("help", english)
    assert renderer.push("last_chance", ctx) == renderer.push("last_chance", english)
    assert renderer.opt_out_line(locale) == "Reply STOP to opt out"
    assert renderer.keyword_reply("stop", locale, store_name="Shop").startswith(
        "Shop: You're unsubscribed"
    )


@pytest.mark.parametrize(
    ("locale", "language"),
    [("fa-IR", "fa"), ("ru_RU", "ru"), ("uz-Latn-UZ", "uz"), ("LT", "lt"), ("kk-KZ", "kk")],
)
def test_a_regional_locale_gets_its_language(
    renderer: ShortRenderer, locale: str, language: str
) -> None:
    assert renderer.opt_out_line(locale) == OPT_OUT[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_unknown_template_is_the_reminder(renderer: ShortRenderer, language: str) -> None:
    ctx = make_context(language)

    assert renderer.sms("welcome", ctx, opt_out=True) == renderer.sms("reminder", ctx, opt_out=True)
    assert renderer.telegram("../x", ctx) == renderer.telegram("reminder", ctx)
    assert renderer.push("", ctx) == renderer.push("reminder", ctx)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_differs_in_every_channel(renderer: ShortRenderer, language: str) -> None:
    ctx = make_context(language)

    for render in (
        lambda t: renderer.sms(t, ctx, opt_out=False),
        lambda t: renderer.telegram(t, ctx).text,
        lambda t: renderer.push(t, ctx),
    ):
        assert len({render(t) for t in TEMPLATES}) == 3


# --- Telegram and push ---------------------------------------------------------------

BUTTONS = {
    "en": "Return to my cart",
    "ru": "Вернуться в корзину",
    "kk": "Себетке оралу",
    "uz": "Savatchaga qaytish",
    "fa": "بازگشت به سبد خرید",
    "lt": "Grįžti į krepšelį",
}
STOP_BUTTONS = {
    "en": "Stop reminders",
    "ru": "Больше не напоминать",
    "kk": "Еске салуды тоқтату",
    "uz": "Eslatmalarni oʻchirish",
    "fa": "توقف یادآوری‌ها",
    "lt": "Nebepriminti",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_telegram_buttons_are_localized(renderer: ShortRenderer, language: str) -> None:
    labels = {renderer.telegram("reminder", make_context(language)).button}
    labels.add(renderer.telegram_optout(language))

    assert labels == {BUTTONS[language], STOP_BUTTONS[language]}
    assert all(0 < len(label) <= 32 for label in labels)


def test_english_telegram_reminder(renderer: ShortRenderer) -> None:
    assert renderer.telegram("reminder", make_context()) == TelegramText(
        text="Hi Ana! Did you forget something at Linen & Co?\n\n"
        "Still in your cart: Linen shirt\n"
        "Total (3 items): $49.50",
        button="Return to my cart",
    )


def test_english_push_reminder(renderer: ShortRenderer) -> None:
    assert renderer.push("reminder", make_context()) == PushText(
        title="Ana, did you forget something?",
        body="Still in your cart at Linen & Co: Linen shirt. Total: $49.50",
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_telegram_and_push_in_every_language(
    renderer: ShortRenderer, language: str, template: str
) -> None:
    ctx = make_context(language)

    message = renderer.telegram(template, ctx)
    push = renderer.push(template, ctx)

    assert message.button == BUTTONS[language]
    assert ctx.store_name in message.text
    assert ctx.total in message.text
    assert "{" not in message.text and "None" not in message.text
    assert "\n\n\n" not in message.text
    assert message.text == message.text.strip()
    assert "\n" not in push.title + push.body
    assert push.title and push.body
    assert len(push.title) <= 65
    assert len(push.body) <= 178  # what iOS shows of a notification body


def test_telegram_without_a_name_or_item(renderer: ShortRenderer) -> None:
    ctx = make_context("ru", first_name=None, item=None, item_count=5)

    assert renderer.telegram("reminder", ctx).text == (
        "Здравствуйте! Вы ничего не забыли в магазине Цветы?\n\nИтого (5 товаров): 49,50\xa0₽"
    )


def test_long_items_and_names_are_cut_in_push_and_telegram(renderer: ShortRenderer) -> None:
    ctx = make_context(
        first_name="Bartholomew-Maximilian Alexander", item=f"{LONG_ITEM} {LONG_ITEM}"
    )

    push = renderer.push("reminder", ctx)
    message = renderer.telegram("reminder", ctx)

    assert push.title == "Bartholomew-Maximilian…, did you forget something?"
    assert push.body == (
        "Still in your cart at Linen & Co: Linen shirt with long sleeves, blue and… Total: $49.50"
    )
    assert f"\nStill in your cart: {LONG_ITEM} Linen shirt with…\n" in message.text


@pytest.mark.parametrize(
    ("language", "count", "phrase"),
    [
        ("en", 1, "1 item"),
        ("en", 2, "2 items"),
        ("ru", 1, "1 товар"),
        ("ru", 3, "3 товара"),
        ("ru", 5, "5 товаров"),
        ("ru", 21, "21 товар"),
        ("lt", 1, "1 prekė"),
        ("lt", 2, "2 prekės"),
        ("lt", 10, "10 prekių"),
        ("lt", 21, "21 prekė"),
        ("kk", 4, "4 тауар"),
        ("uz", 4, "4 ta mahsulot"),
        ("fa", 4, "4 کالا"),
    ],
)
def test_item_counts_use_the_language_s_plural_forms(
    renderer: ShortRenderer, language: str, count: int, phrase: str
) -> None:
    text = renderer.telegram("help", make_context(language, item_count=count)).text

    assert f"({phrase})" in text


def test_persian_counts_follow_the_digits_of_the_total(renderer: ShortRenderer) -> None:
    ctx = make_context("fa", total="۱۲۵٬۰۰۰ تومان", item_count=12)

    assert "(۱۲ کالا)" in renderer.telegram("reminder", ctx).text


# --- WhatsApp -------------------------------------------------------------------------

WHATSAPP_REFUSES = re.compile(r"[\n\r\t]| {5,}")
THERE = {
    "en": "there",
    "ru": "дорогой покупатель",
    "kk": "құрметті клиент",
    "uz": "hurmatli mijoz",
    "fa": "دوست عزیز",
    "lt": "mielas pirkėjau",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_whatsapp_parameters_are_name_store_and_total(
    renderer: ShortRenderer, language: str
) -> None:
    ctx = make_context(language, store="Linen & Co")

    params = renderer.whatsapp_parameters("reminder", ctx)

    total = f"{FSI}{ctx.total}{PDI}" if language == "fa" else ctx.total
    store = f"{FSI}Linen & Co{PDI}" if language == "fa" else "Linen & Co"
    assert params == (ctx.first_name, store, total)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("first_name", [None, "", "  \n\t "])
def test_whatsapp_without_a_name_says_there(
    renderer: ShortRenderer, language: str, first_name: str | None
) -> None:
    params = renderer.whatsapp_parameters("help", make_context(language, first_name=first_name))

    assert params[0] == THERE[language]


whitespace = st.sampled_from([" ", "  ", "     ", "\t", "\n", "\r\n", "\u2028", "\xa0"])
messy = st.lists(st.one_of(st.sampled_from("Ana Shop €$ Қ ۱ ą 🎁"), whitespace), max_size=90).map(
    "".join
)


@settings(max_examples=200, deadline=None)
@given(
    language=st.sampled_from(LANGUAGES),
    template=st.sampled_from([*TEMPLATES, "other"]),
    first_name=st.one_of(st.none(), messy),
    store=messy.filter(str.strip),
    total=messy.filter(str.strip),
)
def test_whatsapp_parameters_obey_whatsapp_s_rules(
    renderer: ShortRenderer,
    language: str,
    template: str,
    first_name: str | None,
    store: str,
    total: str,
) -> None:
    ctx = make_context(language, store=store, first_name=first_name, total=total)

    params = renderer.whatsapp_parameters(template, ctx)

    assert len(params) == 3
    for param in params:
        assert param.strip() == param != ""
        assert not WHATSAPP_REFUSES.search(param)
        assert len(unisolated(param)) <= 61
    # And the WhatsApp adapter, which refuses what Meta refuses, takes them.
    message = OutgoingWhatsApp("m1", "+77010000000", "cart_reminder", language, params)
    assert (
        template_body(message)["template"]["components"][0]["parameters"][1]["text"] == (params[1])
    )


def test_whatsapp_needs_a_total(renderer: ShortRenderer) -> None:
    with pytest.raises(RenderError, match="total"):
        renderer.whatsapp_parameters("reminder", make_context(total=" "))


# --- keyword replies -----------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_keyword_replies_in_every_language(renderer: ShortRenderer, language: str) -> None:
    store = LONG_STORES["latin"]
    replies = {
        kind: renderer.keyword_reply(kind, language, store_name=store)
        for kind in ("stop", "start", "help")
    }

    for reply in replies.values():
        assert unisolated(reply).startswith(f"{store}: ")
        assert encode_info(reply).segments <= 2
    assert "START" in replies["stop"] and "STOP" not in replies["stop"]
    assert "STOP" in replies["start"]
    assert "STOP" in replies["help"]
    assert len(set(replies.values())) == 3


def test_english_keyword_replies(renderer: ShortRenderer) -> None:
    assert renderer.keyword_reply("stop", "en", store_name="Linen & Co") == (
        "Linen & Co: You're unsubscribed and won't get any more messages from us. "
        "Reply START to subscribe again."
    )
    assert renderer.keyword_reply("start", "en", store_name="Linen & Co") == (
        "Linen & Co: You're subscribed again. Reply STOP to opt out."
    )
    assert renderer.keyword_reply("help", "en", store_name="Linen & Co") == (
        "Linen & Co: Cart reminders. Reply STOP to opt out."
    )


def test_a_store_s_help_text_replaces_the_built_in_one(renderer: ShortRenderer) -> None:
    with_stop = "{store}: cart reminders. Reply STOP to opt out."
    without = "Вопросы: +7 727 000 00 00, help@shop.kz"

    assert renderer.keyword_reply("help", "ru", store_name="Цветы", help_text=with_stop) == (
        "Цветы: cart reminders. Reply STOP to opt out."
    )
    assert renderer.keyword_reply("help", "ru", store_name="Цветы", help_text=without) == (
        f"{without}\nОтписаться: ответьте STOP"
    )
    assert renderer.keyword_reply("stop", "ru", store_name="Цветы", help_text=without).startswith(
        "Цветы: Вы отписались"
    )


def test_a_long_help_text_is_cut_to_two_segments(renderer: ShortRenderer) -> None:
    help_text = "Звоните: +7 727 000 00 00. " * 10

    reply = renderer.keyword_reply("help", "kk", store_name="Гүлдер", help_text=help_text)

    assert encode_info(reply).segments == 2
    assert reply.endswith("…\nБас тарту: STOP жіберіңіз")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_opt_out_line_keeps_the_stop_keyword(renderer: ShortRenderer, language: str) -> None:
    line = renderer.opt_out_line(language)

    assert line == OPT_OUT[language]
    assert re.search(r"\bSTOP\b", line)
    assert all(is_gsm7(c) for c in line) == (language in {"en", "uz"})


# --- copy files ------------------------------------------------------------------------


def test_the_docstring_examples_hold() -> None:
    result = doctest.testmod(short)

    assert result.failed == 0
    assert result.attempted == 1


def test_a_broken_copy_file_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("button: Go\ntelegram_optout: Stop\n", encoding="utf-8")

    with pytest.raises(RenderError, match=r"short/en.yaml: no there"):
        ShortRenderer(tmp_path).sms("reminder", make_context(), opt_out=True)


def test_a_missing_copy_file_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"short/ru.yaml: cannot load"):
        ShortRenderer(tmp_path).push("reminder", make_context("ru"))
