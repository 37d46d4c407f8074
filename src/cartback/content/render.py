"""Render built-in email templates in a sandbox, with their CSS inlined once at load time.

Templates live in ``templates/email/<name>/<locale>/`` as ``subject.txt``, ``body.html`` and
``body.txt``; a locale falls back to its language and then to ``en`` (``pt_BR`` -> ``pt`` ->
``en``). Each template sees only the fields of :class:`~cartback.content.context.EmailContext`.

A body is either a whole document or a *fragment* of named sections that fill the slots of
the shared layout (``_layout/<locale>/body.html`` or ``body.txt``)::

    <!--preheader-->Your cart at {{ store.name }} is saved.
    <!--button-->Return to your cart
    <!--content-->
    <h1 class="title">Did you forget something?</h1>
    <!--@include items-->

The layout marks its slots ``<!--@preheader-->``, ``<!--@button-->``, ``<!--@content-->``;
``<!--@include NAME-->`` pulls in ``_partials/<locale>/NAME.html`` (or ``.txt``). The pieces
are joined as text before Jinja compiles them and before the CSS is inlined, so a layout's
``<style>`` reaches every template.

Why inline at load time: inlining CSS per message costs 169 µs of a 442 µs pipeline; doing it once
per template doubles the messages rendered per core (2,261 -> 4,804/s, performance.md B5).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import threading
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import css_inline
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cartback.content.context import EmailContext, ItemView, StoreInfo

__all__ = ["MAX_OUTPUT_BYTES", "EmailRenderer", "RenderError", "RenderedEmail", "inline_css"]

MAX_OUTPUT_BYTES = 512 * 1024  # an email over this is a broken template, not a real message
_DEFAULT_LOCALE = "en"
_PARTS = ("subject.txt", "body.html", "body.txt")
_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")
# A Jinja expression, statement or comment. Quoted strings may hold "}}" or "%}".
_JINJA_TAG = re.compile(
    r"""\{\{(?:[^'"}]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}"""
    r"""|\{%(?:[^'"%]|'[^']*'|"[^"]*"|%(?!\}))*%\}"""
    r"""|\{#.*?#\}""",
    re.DOTALL,
)
_MAX_OVERRIDES = 256
_SECTION = re.compile(r"<!--([a-z_]+)-->")
_SLOT = re.compile(r"<!--@([a-z_]+)-->")
_INCLUDE = re.compile(r"<!--@include ([a-z0-9_]+)-->")


class RenderError(Exception):
    """A template that cannot be loaded or rendered; the message says which and why."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, plus a guard against huge ``*`` and ``**`` results.

    The output cap only sees what a template writes; ``{{ 'x' * 10**10 }}`` would exhaust memory
    before writing anything, so repetition and powers are checked before they run.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT_BYTES:
                    raise SecurityError("repetition result is too large")
        elif operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent is too large")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # A declared field of our own frozen context dataclasses is plain data (a string,
        # a number, a tuple of more of them): read it without the sandbox's per-access
        # checks, which cost more than the rest of an attribute read (~40 reads a mail).
        # Everything else, including whatever such a field holds, takes the checks.
        fields = _PLAIN_FIELDS.get(type(obj))
        if fields is not None and attribute in fields:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


_PLAIN_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(field.name for field in dataclasses.fields(cls))
    for cls in (EmailContext, StoreInfo, ItemView)
}
_CONTEXT_FIELDS = tuple(field.name for field in dataclasses.fields(EmailContext))


def _environment(*, autoescape: bool) -> _Sandbox:
    return _Sandbox(
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


@dataclass(frozen=True, slots=True)
class _Compiled:
    subject: Template
    html: Template
    text: Template


class EmailRenderer:
    """Loads, inlines and compiles each (template, locale) once; renders thread-safely.

    ``root`` defaults to the built-in templates (``cartback.content/templates/email``); any
    directory of the same shape works (a :class:`pathlib.Path` is a Traversable).
    """

    def __init__(self, root: Traversable | None = None) -> None:
        self._root = root if root is not None else files("cartback.content") / "templates" / "email"
        self._html_env = _environment(autoescape=True)
        self._text_env = _environment(autoescape=False)
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._overrides: dict[str, Template] = {}
        self._lock = threading.Lock()

    def render(
        self, template_name: str, ctx: EmailContext, subject_override: str | None = None
    ) -> RenderedEmail:
        """Subject, text and HTML of ``template_name`` for ``ctx``.

        ``subject_override`` is itself a (sandboxed) template, e.g.
        ``"{{ first_name or 'Hi' }}, you left something"``.
        """
        compiled = self._load(template_name, ctx.locale)
        variables = {name: getattr(ctx, name) for name in _CONTEXT_FIELDS}
        subject_template = (
            compiled.subject if subject_override is None else self._override(subject_override)
        )
        subject = " ".join(_render(subject_template, variables, "subject").split())
        return RenderedEmail(
            subject=subject,
            text=_render(compiled.text, variables, f"{template_name}/body.txt"),
            html=_render(compiled.html, variables, f"{template_name}/body.html"),
        )

    def _load(self, name: str, locale: str) -> _Compiled:
        if not _TEMPLATE_NAME.fullmatch(name):
            raise RenderError(f"invalid template name {name!r}")
        for candidate in _locale_candidates(locale):
            with self._lock:
                cached = self._compiled.get((name, candidate))
            if cached is not None:
                return cached
            folder = self._root / name / candidate
            if folder.joinpath("body.html").is_file():
                compiled = self._compile(name, candidate, folder)
                with self._lock:
                    self._compiled[(name, candidate)] = compiled
                return compiled
        raise RenderError(f"no email template {name!r} (locale {locale!r} or {_DEFAULT_LOCALE!r})")

    def _compile(self, name: str, locale: str, folder: Traversable) -> _Compiled:
        sources = {}
        for part in _PARTS:
            try:
                sources[part] = folder.joinpath(part).read_text(encoding="utf-8")
            except FileNotFoundError as exc:
                raise RenderError(f"template {name}/{locale} has no {part}") from exc
        label = f"{name}/{locale}"
        for part in ("body.html", "body.txt"):
            sources[part] = self._compose(sources[part], part, locale, label)
        html_source = sources["body.html"]
        _compile(self._html_env, html_source, f"{label}/body.html")  # errors name the real line
        return _Compiled(
            subject=_compile(self._text_env, sources["subject.txt"], f"{label}/subject.txt"),
            html=_compile(
                self._html_env, inline_css(html_source, self._inliner), f"{label}/body.html"
            ),
            text=_compile(self._text_env, sources["body.txt"], f"{label}/body.txt"),
        )

    def _compose(self, source: str, part: str, locale: str, label: str) -> str:
        """A fragment's sections poured into the layout, with its includes resolved."""
        if _SECTION.match(source):
            pieces = _SECTION.split(source)[1:]
            sections = {
                key: text.strip("\n") for key, text in zip(pieces[::2], pieces[1::2], strict=True)
            }
            for key in ("preheader", "button"):
                if key in sections:
                    sections[key] = sections[key].strip()
            layout = self._shared("_layout", part, locale, label)

            def fill(match: re.Match[str]) -> str:
                if match.group(1) not in sections:
                    raise RenderError(f"{label}/{part} has no <!--{match.group(1)}--> section")
                return sections[match.group(1)]

            source = _SLOT.sub(fill, layout)  # "<!--@include x-->" is no slot: kept for below
        extension = part.rsplit(".", 1)[1]
        return _INCLUDE.sub(
            lambda m: self._shared("_partials", f"{m.group(1)}.{extension}", locale, label).rstrip(
                "\n"
            ),
            source,
        )

    def _shared(self, folder: str, part: str, locale: str, label: str) -> str:
        for candidate in _locale_candidates(locale):
            found = self._root / folder / candidate / part
            if found.is_file():
                return found.read_text(encoding="utf-8")
        raise RenderError(f"{label}: no {folder}/{locale}/{part} (nor in English)")

    def _override(self, source: str) -> Template:
        with self._lock:
            template = self._overrides.get(source)
        if template is None:
            template = _compile(self._text_env, source, "subject override")
            with self._lock:
                if len(self._overrides) >= _MAX_OVERRIDES:
                    self._overrides.clear()
                self._overrides[source] = template
        return template


def inline_css(source: str, inliner: css_inline.CSSInliner | None = None) -> str:
    """Inline the ``<style>`` rules of an HTML *template* into ``style`` attributes.

    Jinja tags are swapped for HTML comments (which the HTML parser keeps in place, even between
    table rows), the document is inlined, and the tags are put back. ``@media`` rules stay in a
    ``<style>`` block. Tags must sit in text, between elements or inside attribute values, not in
    ``<style>`` or between a tag's attributes; a tag that does not come back out of the inliner
    exactly once is a RenderError. Tables should spell out ``<tbody>`` so that the parser adds
    no element around a loop.
    """
    nonce = secrets.token_hex(4)
    tags: list[str] = []

    def hide(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"<!--cb{nonce}:{len(tags) - 1}-->"

    hidden = _JINJA_TAG.sub(hide, source)
    try:
        inlined = (inliner or css_inline.CSSInliner(keep_at_rules=True)).inline(hidden)
    except css_inline.InlineError as exc:
        raise RenderError(f"cannot inline CSS: {exc}") from exc
    seen: list[int] = []

    def restore(match: re.Match[str]) -> str:
        index = int(match.group(1) or match.group(2))
        seen.append(index)
        return tags[index]

    marker = re.compile(rf"<!--cb{nonce}:(\d+)-->|&lt;!--cb{nonce}:(\d+)--&gt;")
    restored = marker.sub(restore, inlined)
    if sorted(seen) != list(range(len(tags))):
        lost = sorted(set(range(len(tags))) - set(seen))
        where = ", ".join(tags[i] for i in lost[:3]) or "a tag was duplicated"
        raise RenderError(f"CSS inlining cannot keep these Jinja tags in place: {where}")
    return restored


def _locale_candidates(locale: str) -> list[str]:
    if not _LOCALE.fullmatch(locale):
        return [_DEFAULT_LOCALE]
    parts = locale.replace("-", "_").split("_")
    full = "_".join([parts[0].lower(), *parts[1:]])
    candidates = [full, parts[0].lower(), _DEFAULT_LOCALE]
    return list(dict.fromkeys(candidates))


def _compile(env: _Sandbox, source: str, label: str) -> Template:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise RenderError(f"{label}: syntax error on line {exc.lineno}: {exc.message}") from exc


def _render(template: Template, variables: dict[str, Any], label: str) -> str:
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(variables):
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise RenderError(f"{label}: output is over {MAX_OUTPUT_BYTES} bytes")
            chunks.append(chunk)
    except RenderError:
        raise
    except SecurityError as exc:
        raise RenderError(f"{label}: not allowed in a template: {exc}") from exc
    except TemplateError as exc:
        raise RenderError(f"{label}: {exc.message or type(exc).__name__}") from exc
    except Exception as exc:  # a template is user input: any failure is a broken template
        raise RenderError(f"{label}: {type(exc).__name__}: {exc}") from exc
    out = "".join(chunks)
    # Characters never outnumber UTF-8 bytes, so only long outputs need the exact byte count.
    if size > MAX_OUTPUT_BYTES // 4 and len(out.encode("utf-8")) > MAX_OUTPUT_BYTES:
        raise RenderError(f"{label}: output is over {MAX_OUTPUT_BYTES} bytes")
    return out
