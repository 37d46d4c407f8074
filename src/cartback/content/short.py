"""Built-in copy for the short channels: SMS, Telegram, web/mobile push, WhatsApp parameters.

The copy lives in ``templates/short/<language>.yaml``, one file for each of en, ru, kk, uz
(Latin), fa and lt. Each holds small sandboxed Jinja templates (no autoescaping: this is
plain text) for the three flow steps: ``reminder`` (step 1), ``help`` (step 2) and
``last_chance`` (step 3). An unknown step name is rendered as ``reminder``; a locale is
matched on its language (``fa-IR`` -> ``fa``), and any other language gets English.

An SMS is ``<store>: <text>``, then the link on its own line, then (when asked) the
opt-out line, and never more than :data:`SMS_MAX_SEGMENTS` segments as
:mod:`cartback.content.sms` counts them. When it would be longer, the variable parts give
way, in this order, until it fits:

1. the item name is cut (``"Linen shirt with lo…"``), down to 8 characters, then dropped;
2. the first name is dropped (and the item tried again from its full length);
3. the text is cut to its first sentence ("Did you forget something?");
4. the store name is cut. Of store names up to 20 characters, only ones made mostly of
   emoji (two UTF-16 units each) need this. The link is never touched: a link that
   leaves no room is a :class:`RenderError`.

For example, in Russian (UCS-2: 134 units in two parts) with the opt-out line::

    Цветы и подарки: Анна, Вы ничего не забыли? В корзине: Букет «Нежн…
    https://go.shop.kz/r/AbC123xyz012345678x
    Отписаться: ответьте STOP

SMS text is also made GSM-friendly, as Twilio's Smart Encoding would: no-break and thin
spaces become spaces, typographic apostrophes and quotes (including Uzbek ʻ) become ``'``
and ``"``, en and em dashes ``-``, and a cut in an otherwise GSM-7 message ends in
``...`` rather than ``…``, so one look-alike character does not halve the segment size.

Persian text gets each variable that holds left-to-right or neutral-only text (a Latin
store name, a price in Latin digits) wrapped in FSI...PDI, so it cannot reorder the
Persian around it (locales.md).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final, Literal

import yaml
from babel import Locale
from babel.numbers import format_decimal
from jinja2 import Template

from cartback.content.render import RenderError, _compile, _environment, _render
from cartback.content.sms import (
    GSM7_PER_PART,
    UCS2_PER_PART,
    SmsInfo,
    encode_info,
    encoding_of,
    is_gsm7,
    non_gsm_characters,
)

__all__ = [
    "LANGUAGES",
    "SMS_MAX_SEGMENTS",
    "TEMPLATES",
    "PushText",
    "ShortContext",
    "ShortRenderer",
    "TelegramText",
]

LANGUAGES: Final = ("en", "ru", "kk", "uz", "fa", "lt")
TEMPLATES: Final = ("reminder", "help", "last_chance")
SMS_MAX_SEGMENTS: Final = 2
KeywordKind = Literal["stop", "start", "help"]

_DEFAULT_LANGUAGE: Final = "en"
_DEFAULT_TEMPLATE: Final = "reminder"
_RTL: Final = frozenset({"fa"})
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")
# Shown whole up to these lengths, else cut: a push notification shows about two lines,
# a Telegram message has room for a longer product name.
_ITEM_MAX_SMS: Final = 40
_ITEM_MAX_PUSH: Final = 40
_ITEM_MAX_TELEGRAM: Final = 80
_NAME_MAX: Final = 30
_WHATSAPP_MAX: Final = 60
# Shorter than this, a cut name says nothing: drop it instead.
_ITEM_MIN: Final = 8
_STORE_MIN: Final = 4
_ELLIPSIS: Final = "…"
_GSM_ELLIPSIS: Final = "..."
_FSI, _PDI = "\u2068", "\u2069"
_ZWJ = "\u200d"
# Embeddings, overrides and isolates; LRM/RLM (which Babel puts in prices) are kept.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Bidi classes that already flow right to left inside Persian text (or take its direction).
_RTL_SAFE: Final = frozenset({"R", "AL", "NSM", "BN", "WS", "ON"})
_NOT_LINE_SPACE = re.compile(r"[^\S\xa0\u2007\u202f]+")  # whitespace except the no-break ones
_SPACES = re.compile(r" {2,}")
_RUN_OF_SPACES = re.compile(r"\s{2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING: Final = " ,.;:-–—/(\u200c\u200d"
_GSM_LOOKALIKES: Final = str.maketrans(
    {
        "\u00a0": " ",  # NO-BREAK SPACE (Babel puts it in prices: "1 250,00 ₸")
        "\u2007": " ",  # FIGURE SPACE
        "\u2009": " ",  # THIN SPACE
        "\u202f": " ",  # NARROW NO-BREAK SPACE
        "\u2018": "'",  # LEFT SINGLE QUOTATION MARK
        "\u2019": "'",  # RIGHT SINGLE QUOTATION MARK
        "\u02bb": "'",  # MODIFIER LETTER TURNED COMMA (Uzbek oʻ, gʻ; "soʻm")
        "\u02bc": "'",  # MODIFIER LETTER APOSTROPHE (Uzbek tutuq belgisi)
        "\u201c": '"',  # LEFT DOUBLE QUOTATION MARK
        "\u201d": '"',  # RIGHT DOUBLE QUOTATION MARK
        "\u2013": "-",  # EN DASH
        "\u2014": "-",  # EM DASH
    }
)
_PER_PART: Final = {"GSM-7": GSM7_PER_PART, "UCS-2": UCS2_PER_PART}


@dataclass(frozen=True, slots=True)
class ShortContext:
    """What short-channel copy sees; money is already formatted for the shopper."""

    store_name: str
    first_name: str | None
    locale: str
    total: str
    item_count: int
    first_item: str | None
    link: str
    step_index: int


@dataclass(frozen=True, slots=True)
class PushText:
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class TelegramText:
    """Plain text (send it without a parse mode) and the label of the link button."""

    text: str
    button: str


@dataclass(frozen=True, slots=True)
class _Copy:
    """One language's copy, compiled."""

    button: str
    telegram_optout: str
    there: str
    opt_out: str
    items: Mapping[str, str]
    sms: Mapping[str, Template]
    telegram: Mapping[str, Template]
    push_title: Mapping[str, Template]
    push_body: Mapping[str, Template]
    keywords: Mapping[str, Template]


@dataclass(frozen=True, slots=True)
class _Vars:
    """Cleaned variables; ``name`` and ``item`` are None when absent."""

    store: str
    name: str | None
    item: str | None
    items: str
    total: str
    step: int


class ShortRenderer:
    """Renders the short-channel copy; loads and compiles each language once, thread-safely.

    ``root`` defaults to the built-in copy (``cartback.content/templates/short``); any
    directory with ``<language>.yaml`` files of the same shape works.
    """

    def __init__(self, root: Traversable | None = None) -> None:
        self._root = root if root is not None else files("cartback.content") / "templates" / "short"
        self._env = _environment(autoescape=False)
        self._copies: dict[str, _Copy] = {}
        self._lock = threading.Lock()

    def sms(self, template: str, ctx: ShortContext, *, opt_out: bool) -> str:
        """The SMS for a flow step: at most :data:`SMS_MAX_SEGMENTS` segments, the link intact.

        Raises :class:`RenderError` for an empty store name or a link that leaves no room.
        """
        language, copy = self._copy(ctx.locale)
        body = copy.sms[_template(template)]
        link = _link(ctx.link)
        tail = f"\n{link}" + (f"\n{_gsm_friendly(copy.opt_out)}" if opt_out else "")
        full = _variables(ctx, copy, language, sms=True)
        rtl = language in _RTL

        def compose(store: str, name: str | None, item: str | None, brief: bool) -> str:
            shown = _Vars(
                _isolate(store, rtl),
                _isolate(name, rtl) if name else None,
                _isolate(item, rtl) if item else None,
                full.items,
                full.total,
                full.step,
            )
            text = _render(body, _jinja(shown, brief=brief), f"short/{language}: sms")
            return _gsm_friendly(" ".join(text.split())) + tail

        return _fit_sms(compose, full)

    def telegram(self, template: str, ctx: ShortContext) -> TelegramText:
        language, copy = self._copy(ctx.locale)
        variables = _variables(ctx, copy, language, item_max=_ITEM_MAX_TELEGRAM)
        text = _render(
            copy.telegram[_template(template)], _jinja(variables), f"short/{language}: telegram"
        )
        lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
        return TelegramText(text=_tidy(text), button=copy.button)

    def push(self, template: str, ctx: ShortContext) -> PushText:
        language, copy = self._copy(ctx.locale)
        name = _template(template)
        variables = _jinja(_variables(ctx, copy, language, item_max=_ITEM_MAX_PUSH))
        title = _render(copy.push_title[name], variables, f"short/{language}: push title")
        body = _render(copy.push_body[name], variables, f"short/{language}: push body")
        return PushText(title=_one_line(title), body=_one_line(body))

    def whatsapp_parameters(self, template: str, ctx: ShortContext) -> tuple[str, ...]:
        """Body parameters of the approved template: ``{{1}}`` first name (or the language's
        "there"), ``{{2}}`` store name, ``{{3}}`` total. The same for every step.

        Each is one line without tabs or runs of spaces (WhatsApp refuses those) and at
        most 60 characters. Raises :class:`RenderError` for an empty store name or total.
        """
        language, copy = self._copy(ctx.locale)
        rtl = language in _RTL
        name = _whatsapp(ctx.first_name or "") or copy.there
        store, total = _whatsapp(ctx.store_name), _whatsapp(ctx.total)
        if not store or not total:
            raise RenderError("short: WhatsApp parameters need a store name and a total")
        return tuple(_isolate(value, rtl) for value in (name, store, total))

    def keyword_reply(
        self,
        kind: KeywordKind,
        locale: str,
        *,
        store_name: str,
        help_text: str | None = None,
    ) -> str:
        """The SMS answer to STOP, START or HELP, in the shopper's language.

        ``help_text`` replaces the built-in HELP answer; ``{store}`` in it becomes the store
        name, and the opt-out line is added when it does not mention STOP. The answer is
        kept within :data:`SMS_MAX_SEGMENTS` segments (a long ``help_text`` is cut).
        """
        language, copy = self._copy(locale)
        rtl = language in _RTL
        store = _gsm_friendly(_clean(store_name))
        if not store:
            raise RenderError("short: a keyword reply needs a store name")
        if kind == "help" and help_text is not None and help_text.strip():
            custom = _gsm_friendly(_clean(help_text)).replace("{store}", _isolate(store, rtl))
            opt_out = "" if "STOP" in custom.upper() else f"\n{_gsm_friendly(copy.opt_out)}"
            return _must(
                _longest(
                    lambda shown: (shown or "") + opt_out,
                    custom,
                    cap=len(custom),
                    minimum=1,
                    drop=False,
                )
            )
        template = copy.keywords[kind]
        label = f"short/{language}: keyword {kind}"

        def reply(shown: str | None) -> str:
            text = _render(template, {"store": _isolate(shown or "", rtl)}, label)
            return _gsm_friendly(" ".join(text.split()))

        return _must(_longest(reply, store, cap=len(store), minimum=_STORE_MIN, drop=False))

    def telegram_optout(self, locale: str) -> str:
        """The label of Telegram's "stop reminders" callback button, in the locale's language."""
        return self._copy(locale)[1].telegram_optout

    def opt_out_line(self, locale: str) -> str:
        """The opt-out line ("Reply STOP to opt out") in the locale's language; the keyword
        stays STOP."""
        return _gsm_friendly(self._copy(locale)[1].opt_out)

    def _copy(self, locale: str) -> tuple[str, _Copy]:
        language = _language(locale)
        with self._lock:
            cached = self._copies.get(language)
        if cached is None:
            cached = self._load(language)
            with self._lock:
                self._copies[language] = cached
        return language, cached

    def _load(self, language: str) -> _Copy:
        label = f"short/{language}.yaml"
        try:
            source = (self._root / f"{language}.yaml").read_text(encoding="utf-8")
            data = yaml.safe_load(source)
        except (OSError, yaml.YAMLError) as exc:
            raise RenderError(f"{label}: cannot load: {exc}") from exc
        read = _Reader(data, label)
        compile_ = self._compiler(label)
        return _Copy(
            button=read.text("button"),
            telegram_optout=read.text("telegram_optout"),
            there=read.text("there"),
            opt_out=read.text("opt_out"),
            items=read.plural("items"),
            sms={name: compile_(read.text("sms", name), f"sms.{name}") for name in TEMPLATES},
            telegram={
                name: compile_(read.text("telegram", name), f"telegram.{name}")
                for name in TEMPLATES
            },
            push_title={
                name: compile_(read.text("push", name, "title"), f"push.{name}.title")
                for name in TEMPLATES
            },
            push_body={
                name: compile_(read.text("push", name, "body"), f"push.{name}.body")
                for name in TEMPLATES
            },
            keywords={
                kind: compile_(read.text("keywords", kind), f"keywords.{kind}")
                for kind in ("stop", "start", "help")
            },
        )

    def _compiler(self, label: str) -> Callable[[str, str], Template]:
        return lambda source, key: _compile(self._env, source, f"{label}: {key}")


class _Reader:
    """Typed access to a copy file, naming the missing key when there is one."""

    def __init__(self, data: Any, label: str) -> None:
        self._data = data
        self._label = label

    def text(self, *path: str) -> str:
        node = self._data
        for key in path:
            if not isinstance(node, dict) or key not in node:
                raise RenderError(f"{self._label}: no {'.'.join(path)}")
            node = node[key]
        if not isinstance(node, str) or not node.strip():
            raise RenderError(f"{self._label}: {'.'.join(path)} must be non-empty text")
        return node

    def plural(self, key: str) -> Mapping[str, str]:
        node = self._data.get(key) if isinstance(self._data, dict) else None
        if not isinstance(node, dict) or not all(isinstance(v, str) for v in node.values()):
            raise RenderError(f"{self._label}: {key} must map plural categories to text")
        if "other" not in node:
            raise RenderError(f"{self._label}: {key} has no 'other' form")
        return {str(category): form for category, form in node.items()}


# --- variables ----------------------------------------------------------------------


def _language(locale: str) -> str:
    if not _LOCALE.fullmatch(locale):
        return _DEFAULT_LANGUAGE
    language = re.split(r"[_-]", locale)[0].lower()
    return language if language in LANGUAGES else _DEFAULT_LANGUAGE


def _template(name: str) -> str:
    return name if name in TEMPLATES else _DEFAULT_TEMPLATE


def _variables(
    ctx: ShortContext,
    copy: _Copy,
    language: str,
    *,
    sms: bool = False,
    item_max: int | None = None,
) -> _Vars:
    """Cleaned values; outside SMS, long names are cut and everything is bidi-isolated."""
    prepare = (lambda text: _gsm_friendly(_clean(text))) if sms else _clean
    store = prepare(ctx.store_name)
    if not store:
        raise RenderError("short: the store name is empty")
    name = prepare(ctx.first_name or "") or None
    item = prepare(ctx.first_item or "") or None
    total = prepare(ctx.total)
    items = _count_phrase(copy.items, ctx.item_count, language, total)
    if sms:
        return _Vars(store, name, item, items, total, ctx.step_index)
    rtl = language in _RTL
    if name is not None and len(name) > _NAME_MAX:
        name = _cut(name, _NAME_MAX) + _ELLIPSIS
    if item is not None and item_max is not None and len(item) > item_max:
        item = _cut(item, item_max) + _ELLIPSIS
    return _Vars(
        _isolate(store, rtl),
        _isolate(name, rtl) if name else None,
        _isolate(item, rtl) if item else None,
        items,
        _isolate(total, rtl),
        ctx.step_index,
    )


def _jinja(variables: _Vars, *, brief: bool = False) -> dict[str, Any]:
    return {
        "store": variables.store,
        "name": variables.name,
        "item": variables.item,
        "items": variables.items,
        "total": variables.total,
        "step": variables.step,
        "brief": brief,
    }


def _count_phrase(forms: Mapping[str, str], count: int, language: str, total: str) -> str:
    """The count ("3 items") in the language's CLDR plural form and the total's digits."""
    number = format_decimal(count, locale=language)
    if any("\u06f0" <= char <= "\u06f9" for char in total):  # the store shows Persian digits
        number = number.translate(str.maketrans("0123456789,", "۰۱۲۳۴۵۶۷۸۹٬"))
    category = Locale.parse(language).plural_form(count)
    return forms.get(category, forms["other"]).replace("{n}", number)


def _clean(text: str) -> str:
    """One line: runs of whitespace become one space (no-break spaces stay); no control
    characters, and no bidi embeddings or isolates that could unbalance ours."""
    text = "".join(char for char in text if char.isspace() or not _dropped(char))
    return _NOT_LINE_SPACE.sub(" ", text).strip()


def _dropped(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS


def _gsm_friendly(text: str) -> str:
    return text.translate(_GSM_LOOKALIKES)


def _isolate(text: str, rtl: bool) -> str:
    """FSI...PDI around text that would not flow right to left by itself in RTL copy."""
    if rtl and text and any(unicodedata.bidirectional(c) not in _RTL_SAFE for c in text):
        return f"{_FSI}{text}{_PDI}"
    return text


def _link(link: str) -> str:
    link = link.strip()
    if not link or any(char.isspace() for char in link):
        raise RenderError("short: the SMS link is empty or has whitespace in it")
    return link


def _whatsapp(text: str) -> str:
    text = _RUN_OF_SPACES.sub(" ", _clean(text))  # a lone no-break space may stay
    return _cut(text, _WHATSAPP_MAX) + _ELLIPSIS if len(text) > _WHATSAPP_MAX else text


def _one_line(text: str) -> str:
    return _tidy(_SPACES.sub(" ", " ".join(text.split("\n"))).strip())


def _tidy(text: str) -> str:
    return text.replace(_ELLIPSIS + ".", _ELLIPSIS)


# --- cutting ------------------------------------------------------------------------


def _cut(text: str, length: int) -> str:
    """At most ``length`` characters of ``text``, ending at a word break when one is near,
    never inside an emoji sequence or before a combining mark, without trailing punctuation.

    >>> _cut("Linen shirt with long sleeves", 20)
    'Linen shirt with'
    """
    end = length
    space = text.rfind(" ", 0, end + 1)
    if space >= end * 0.6:
        end = space
    while 0 < end < len(text) and _joined(text, end):
        end -= 1
    return text[:end].rstrip(_TRAILING) or text[:length]


def _joined(text: str, index: int) -> bool:
    """Whether ``text[index - 1]`` and ``text[index]`` belong to one grapheme we know of."""
    after, before = text[index], text[index - 1]
    if before == _ZWJ or _extends(after):
        return True
    if _regional(after) and _regional(before):
        run = 0
        while index - run - 1 >= 0 and _regional(text[index - run - 1]):
            run += 1
        return run % 2 == 1  # an odd run before: "after" completes a flag
    return False


def _extends(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or char in {_ZWJ, "\ufe0e", "\ufe0f"}
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tag sequences (subdivision flags)
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


# --- fitting an SMS -----------------------------------------------------------------


def _fits(text: str) -> SmsInfo | None:
    """None when the text fits, else its counts."""
    info = encode_info(text)
    return None if info.segments <= SMS_MAX_SEGMENTS else info


_Compose = Callable[[str, str | None, str | None, bool], str]


def _fit_sms(compose: _Compose, full: _Vars) -> str:
    """The fullest SMS that fits: see the module docstring for what gives way, in order."""
    for name in dict.fromkeys((full.name, None)):

        def with_name(item: str | None, name: str | None = name) -> str:
            return compose(full.store, name, item, False)

        fitted = _longest(with_name, full.item or "", cap=_ITEM_MAX_SMS, minimum=_ITEM_MIN)
        if fitted is not None:
            return fitted
    brief = _longest(
        lambda store: compose(store or "", None, None, True),
        full.store,
        cap=len(full.store),
        minimum=_STORE_MIN,
        drop=False,
    )
    return _must(brief)


def _must(fitted: str | None) -> str:
    if fitted is None:
        raise RenderError(
            f"short: the SMS cannot fit in {SMS_MAX_SEGMENTS} segments: is the link too long?"
        )
    return fitted


def _longest(
    render: Callable[[str | None], str],
    value: str,
    *,
    cap: int,
    minimum: int,
    drop: bool = True,
) -> str | None:
    """The rendering that fits with the most of ``value`` shown: whole when it has at most
    ``cap`` characters, else cut (with an ellipsis) to no fewer than ``minimum``; then, if
    ``drop``, with ``value`` left out (``render(None)``). None when nothing fits.

    A failed attempt's excess says how much to cut next: a character costs at most two
    units, so cutting fewer than half the excess cannot fit.
    """
    tried: set[str] = set()
    length = min(len(value), cap)
    gsm_rest = bool(value) and encoding_of(render("x")) == "GSM-7"
    while value and length >= min(minimum, len(value)):
        prefix = value if length == len(value) else _cut(value, length)
        if prefix not in tried:
            tried.add(prefix)
            text = render(value) if prefix == value else _ellipsized(render, prefix)
            info = _fits(text)
            if info is None:
                return text
            length = _shorter(info, value, length, gsm_rest)
        else:
            length -= 1
        if length < minimum:
            break
    if not drop:
        return None
    text = render(None)
    return text if _fits(text) is None else None


def _shorter(info: SmsInfo, value: str, length: int, gsm_rest: bool) -> int:
    excess = info.units - SMS_MAX_SEGMENTS * _PER_PART[info.encoding]
    shorter = length - max(1, math.ceil(excess / 2))
    if info.encoding == "UCS-2" and gsm_rest:
        # Cutting off the last non-GSM character of the value may switch the message to
        # GSM-7 and its larger segments: do not jump past that point.
        last = max((i for i, char in enumerate(value[:length]) if not is_gsm7(char)), default=-1)
        shorter = max(shorter, last)
    return min(shorter, length - 1)


def _ellipsized(render: Callable[[str | None], str], prefix: str) -> str:
    """``prefix…``, or ``prefix...`` when "…" would be the only non-GSM character."""
    text = render(prefix + _ELLIPSIS)
    if text.count(_ELLIPSIS) == 1 and non_gsm_characters(text) == [_ELLIPSIS]:
        return render(prefix + _GSM_ELLIPSIS)
    return text
