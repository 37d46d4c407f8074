from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from cartback.content import (
    EmailContext,
    EmailRenderer,
    RenderError,
    StoreInfo,
    build_items,
    format_money,
    inline_css,
    items_total_minor,
)

STORE = StoreInfo(
    name="Linen & Co",
    url="https://shop.example.com",
    support_email="help@shop.example.com",
    address="Gedimino pr. 1, 01103 Vilnius, Lithuania",
    logo_url=None,
)
RAW_ITEMS = [
    {
        "sku": "A1",
        "name": "Linen shirt",
        "url": "https://shop.example.com/p/a1",
        "image_url": "https://cdn.example.com/a1.jpg",
        "unit_price": 1250,
        "quantity": 2,
        "variant": "Blue / M",
    },
    {
        "sku": "B2",
        "name": "<script>alert(1)</script>",
        "url": "https://shop.example.com/p/b2",
        "image_url": None,
        "unit_price": 700,
        "quantity": 1,
    },
]
RESTORE = "https://t.example.com/r/restore-token"
UNSUBSCRIBE = "https://t.example.com/u/unsub-token"
PIXEL = "https://t.example.com/o/pixel-token.gif"
TEMPLATES = ["reminder", "help", "last_chance"]


def make_context(
    locale: str = "en", currency: str = "USD", first_name: str | None = "Ana"
) -> EmailContext:
    return EmailContext(
        store=STORE,
        first_name=first_name,
        locale=locale,
        items=build_items(RAW_ITEMS, currency, locale),
        total=format_money(items_total_minor(RAW_ITEMS), currency, locale),
        item_count=3,
        restore_url=RESTORE,
        unsubscribe_url=UNSUBSCRIBE,
        open_pixel_url=PIXEL,
        step_index=1,
    )


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


def test_reminder_lists_items_with_prices_total_and_button(renderer: EmailRenderer) -> None:
    email = renderer.render("reminder", make_context())

    assert email.subject == "Ana, did you forget something?"
    assert email.html.count('class="item-name"') == 2
    assert ">Linen shirt</a>" in email.html
    assert '<img class="thumb" width="80" src="https://cdn.example.com/a1.jpg"' in email.html
    assert "Blue / M" in email.html
    assert "Quantity: 2 × $12.50" in email.html
    assert ">$25.00</td>" in email.html
    assert "Total (3 items)" in email.html
    assert ">$32.00</td>" in email.html
    assert re.search(
        rf'<a class="button" href="{RESTORE}" style="[^"]+">Return to your cart</a>', email.html
    )
    assert "- Linen shirt (Blue / M)\n  2 x $12.50 = $25.00\n" in email.text
    assert "Total (3 items): $32.00\n" in email.text


def test_prices_follow_the_locale(renderer: EmailRenderer) -> None:
    email = renderer.render("reminder", make_context(locale="lt", currency="EUR"))

    assert "Quantity: 2 × 12,50\xa0€" in email.html
    assert ">32,00\xa0€</td>" in email.html
    assert '<html lang="lt">' in email.html
    assert "2 x 12,50\xa0€ = 25,00\xa0€" in email.text


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_template_has_pixel_links_and_footer(renderer: EmailRenderer, name: str) -> None:
    email = renderer.render(name, make_context())

    assert f'<img src="{PIXEL}" width="1" height="1" alt="">' in email.html
    assert f'href="{RESTORE}"' in email.html
    assert re.search(rf'<a href="{UNSUBSCRIBE}" style="[^"]*">Unsubscribe</a>', email.html)
    assert "Linen &amp; Co · Gedimino pr. 1, 01103 Vilnius, Lithuania" in email.html
    assert 'href="mailto:help@shop.example.com"' in email.html
    assert f": {RESTORE}\n" in email.text
    assert f"Unsubscribe from these reminders: {UNSUBSCRIBE}\n" in email.text
    assert "Linen & Co, Gedimino pr. 1, 01103 Vilnius, Lithuania" in email.text
    assert "{{" not in email.html + email.text + email.subject


@pytest.mark.parametrize("name", TEMPLATES)
def test_css_is_inlined_and_media_queries_kept(renderer: EmailRenderer, name: str) -> None:
    email = renderer.render(name, make_context())

    assert 'style="margin: 0;padding: 0;background-color: #f4f4f5;"' in email.html  # <body>
    assert re.search(r'<a class="button" href="[^"]+" style="display: inline-block;', email.html)
    styles = re.findall(r"<style>(.*?)</style>", email.html, re.DOTALL)
    assert len(styles) == 1
    assert styles[0].lstrip().startswith("@media only screen and (max-width: 620px)")
    assert ".item-price {" not in styles[0]


@pytest.mark.parametrize("name", TEMPLATES)
def test_html_is_escaped(renderer: EmailRenderer, name: str) -> None:
    email = renderer.render(name, make_context())

    assert "<script>" not in email.html
    if name != "help":
        assert ">&lt;script&gt;alert(1)&lt;/script&gt;</a>" in email.html
        assert "- <script>alert(1)</script>\n" in email.text  # plain text is not HTML


def test_help_answers_common_questions(renderer: EmailRenderer) -> None:
    email = renderer.render("help", make_context(first_name=None))

    assert email.subject == "Any questions about your order?"
    assert "Hi there," in email.html
    for question in ("How much is shipping", "doesn't fit", "How can I pay", "payment safe"):
        assert question in email.html
        assert question in email.text


def test_last_chance_subject_and_button(renderer: EmailRenderer) -> None:
    email = renderer.render("last_chance", make_context())

    assert email.subject == "Last reminder: your cart at Linen & Co"
    assert f'href="{RESTORE}" style="display: inline-block;' in email.html
    assert ">Complete your order</a>" in email.html
    assert email.html.count('class="item-name"') == 2


def test_a_logo_replaces_the_store_name_in_the_header(renderer: EmailRenderer) -> None:
    ctx = replace(make_context(), store=replace(STORE, logo_url="https://cdn.example.com/l.png"))

    email = renderer.render("reminder", ctx)

    assert 'src="https://cdn.example.com/l.png" alt="Linen &amp; Co"' in email.html


def test_subject_override_is_a_template(renderer: EmailRenderer) -> None:
    subject = "{{ first_name or 'Hi' }}, you left something at {{ store.name }}"

    named = renderer.render("reminder", make_context(), subject_override=subject)
    anonymous = renderer.render("reminder", make_context(first_name=None), subject)

    assert named.subject == "Ana, you left something at Linen & Co"
    assert anonymous.subject == "Hi, you left something at Linen & Co"


def test_subject_newlines_collapse(renderer: EmailRenderer) -> None:
    email = renderer.render("reminder", make_context(), subject_override="Hi\n  {{ first_name }}\n")

    assert email.subject == "Hi Ana"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ store.__class__ }}",
        "{{ items.__len__() }}",
        "{{ store.name.format.__globals__ }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_the_sandbox_refuses_attribute_walking(renderer: EmailRenderer, source: str) -> None:
    with pytest.raises(RenderError, match="not allowed in a template"):
        renderer.render("reminder", make_context(), subject_override=source)


def test_unknown_variables_are_errors(renderer: EmailRenderer) -> None:
    with pytest.raises(RenderError, match="'coupon_code' is undefined"):
        renderer.render("reminder", make_context(), subject_override="{{ coupon_code }}")


def test_a_syntax_error_names_the_line(renderer: EmailRenderer) -> None:
    with pytest.raises(RenderError, match="syntax error on line 1"):
        renderer.render("reminder", make_context(), subject_override="{% if %}")


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}xxxxxx{% endfor %}",
        "{{ 'x' * 1000000 }}",
        "{{ 'ы' * 300000 }}",  # under the cap in characters, over it in bytes
    ],
)
def test_output_over_the_cap_is_refused(renderer: EmailRenderer, source: str) -> None:
    with pytest.raises(RenderError, match=r"over 524288 bytes|too large"):
        renderer.render("reminder", make_context(), subject_override=source)


@pytest.mark.parametrize("name", ["nope", "../reminder", "Reminder"])
def test_unknown_template_names(renderer: EmailRenderer, name: str) -> None:
    with pytest.raises(RenderError):
        renderer.render(name, make_context())


def write_template(root: Path, name: str, locale: str, html: str, subject: str = "S") -> None:
    folder = root / name / locale
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text(subject)
    (folder / "body.html").write_text(html)
    (folder / "body.txt").write_text("{{ restore_url }}")


def test_locale_falls_back_to_language_then_english(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "en", "<p>en</p>", subject="Hello")
    write_template(tmp_path, "t", "lt", "<p>lt</p>", subject="Labas")
    renderer = EmailRenderer(tmp_path)

    assert renderer.render("t", make_context(locale="lt_LT")).subject == "Labas"
    assert renderer.render("t", make_context(locale="lt")).subject == "Labas"
    assert renderer.render("t", make_context(locale="ru")).subject == "Hello"


def test_a_jinja_tag_inside_style_cannot_be_inlined(tmp_path: Path) -> None:
    html = (
        "<html><head><style>{% if first_name %}p { color: red; }{% endif %}</style></head>"
        "<body><p>x</p></body></html>"
    )
    write_template(tmp_path, "t", "en", html)

    with pytest.raises(RenderError, match="cannot keep these Jinja tags"):
        EmailRenderer(tmp_path).render("t", make_context())


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "en", "<p>x</p>")
    (tmp_path / "t" / "en" / "body.txt").unlink()

    with pytest.raises(RenderError, match=r"has no body\.txt"):
        EmailRenderer(tmp_path).render("t", make_context())


def test_inline_css_keeps_loops_between_table_rows() -> None:
    source = (
        "<html><head><style>td { color: red; } .q { font-weight: bold; }</style></head><body>"
        '<table><tbody>{% for i in items %}<tr><td class="q" title="{{ i.name }}">'
        "{{ i.name if i.quantity > 1 else '-' }}</td></tr>{% endfor %}</tbody></table>"
        "</body></html>"
    )

    inlined = inline_css(source)

    assert (
        "<tbody>{% for i in items %}<tr>"
        '<td class="q" title="{{ i.name }}" style="color: red;font-weight: bold;">'
        "{{ i.name if i.quantity > 1 else '-' }}</td></tr>{% endfor %}</tbody>"
    ) in inlined


def write_layout(root: Path) -> None:
    for folder, part, text in (
        (
            "_layout",
            "body.html",
            "<html><head><style>.t { color: red; }</style></head><body>"
            "<i><!--@preheader--></i><div class='t'><!--@content--></div>"
            "<a href='{{ restore_url }}'><!--@button--></a></body></html>",
        ),
        ("_layout", "body.txt", "<!--@content-->\n<!--@button-->: {{ restore_url }}"),
        ("_partials", "total.html", "<b class='t'>{{ total }}</b>\n"),
        ("_partials", "total.txt", "Total {{ total }}\n"),
    ):
        (root / folder / "en").mkdir(parents=True, exist_ok=True)
        (root / folder / "en" / part).write_text(text)


def test_a_fragment_fills_the_shared_layout_and_its_css_reaches_it(tmp_path: Path) -> None:
    write_layout(tmp_path)
    write_template(
        tmp_path,
        "t",
        "en",
        "<!--preheader-->Saved for {{ first_name }}\n<!--button-->Go back\n<!--content-->\n"
        "<p>Hello</p>\n<!--@include total-->\n",
    )
    (tmp_path / "t" / "en" / "body.txt").write_text(
        "<!--button-->Go back\n<!--content-->\nHello\n<!--@include total-->"
    )

    out = EmailRenderer(tmp_path).render("t", make_context(first_name="Ann"))

    assert "<i>Saved for Ann</i>" in out.html
    assert re.search(r"<div class=\"t\" style=\"color: ?red;?\"><p>Hello</p>\s*<b", out.html)
    assert re.search(r"<b class=\"t\" style=\"color: ?red;?\">", out.html)
    assert ">Go back</a>" in out.html
    assert out.text.splitlines()[:2] == ["Hello", f"Total {make_context().total}"]
    assert out.text.endswith(f"Go back: {make_context().restore_url}")


def test_a_fragment_missing_a_section_the_layout_needs_is_named(tmp_path: Path) -> None:
    write_layout(tmp_path)
    write_template(tmp_path, "t", "en", "<!--content-->\n<p>Hello</p>\n")

    with pytest.raises(RenderError, match="has no <!--preheader--> section"):
        EmailRenderer(tmp_path).render("t", make_context())


def test_items_link_to_the_tracked_cart_even_without_a_product_url(
    renderer: EmailRenderer,
) -> None:
    raw = [
        {"name": "Mystery box", "url": None, "image_url": None, "unit_price": 500, "quantity": 1}
    ]
    ctx = replace(make_context(), items=build_items(raw, "USD", "en"))

    html = renderer.render("reminder", ctx).html

    assert "None" not in html
    assert re.search(
        rf'<a class="item-name" href="{re.escape(RESTORE)}"[^>]*>Mystery box</a>', html
    )
