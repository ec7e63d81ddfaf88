"""Every string a person reads on the chat page is translatable and translated into Korean.

Fails on a new English string in the chat page's templates or JS that is not marked for
translation, or marked but missing from the committed (compiled) Korean catalogues.
"""
from __future__ import annotations

import gettext
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

ROOT = Path(settings.BASE_DIR)
TEMPLATES = [
    "templates/chat/chat.html", "templates/base.html", "templates/language_switch.html",
    "templates/admin/index.html", "templates/admin/quotas/live_usage.html",
    "templates/admin/quotas/live_usage_table.html", "templates/admin/quotas/sync_status.html",
]
CHAT_JS = ROOT / "static/chat/chat.js"
KO_JS_CATALOGUE = ROOT / "locale/ko/LC_MESSAGES/djangojs.mo"
# Names, not words: the product's name stays as it is in every language.
NOT_TRANSLATED = {"AI Gateway", "v"}  # "v" before a version number
READ_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
TRANSLATE_TAG = re.compile(r'{%\s*(?:translate|trans)\s+(["\'])(.+?)\1\s*%}')
BLOCK_TRANSLATE = re.compile(r"{%\s*blocktranslate[^%]*%}(.*?){%\s*endblocktranslate\s*%}", re.S)
JS_MSGID = re.compile(r'\b_\(\s*"((?:[^"\\]|\\.)*)"')
# A literal a person would read, put on the page without `_()`.
JS_BARE_TEXT = re.compile(
    r'(?:textContent|title|placeholder|\.error|\.note)\s*=\s*["\'`][^"\'`]*[A-Za-z]'
    r'|\b(?:showNotice|noteNode|errorNode)\(\s*["\'`][^"\'`]*[A-Za-z]'
)


class _ReadableText(HTMLParser):
    """Text nodes and read attributes of a template whose Django tags were taken out."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        self.found += [value for name, value in attrs if name in READ_ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def untranslated_text(source: str) -> list[str]:
    source = BLOCK_TRANSLATE.sub("", TRANSLATE_TAG.sub("", source))
    # Blocks that fill in CSS class names, not text.
    source = re.sub(r"{%\s*block \w+_class\s*%}.*?{%\s*endblock\s*%}", "", source)
    source = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", "", source, flags=re.S)
    parser = _ReadableText()
    parser.feed(source)
    words = [text.strip(" \n·–-+☰") for text in parser.found if re.search(r"[A-Za-z]", text)]
    return [text for text in words if text not in NOT_TRANSLATED]


def template_msgids(source: str) -> list[str]:
    blocks = [
        re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", block).replace("%%", "%").replace("%", "%%").replace("%%(", "%(")
        for block in BLOCK_TRANSLATE.findall(source)
    ]
    return [match[1] for match in TRANSLATE_TAG.findall(source)] + blocks


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_chat_page_templates_hold_no_english_outside_translate_tags(template):
    assert untranslated_text((ROOT / template).read_text()) == []


def test_the_checker_finds_untranslated_template_text():
    assert untranslated_text('<p title="Hello">{% translate "Fine" %} Stop</p>') == ["Hello", "Stop"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_string_has_a_korean_translation(template):
    msgids = template_msgids((ROOT / template).read_text())
    assert msgids
    with translation.override("ko"):
        missing = [msgid for msgid in msgids if translation.gettext(msgid) == msgid]
    assert missing == []


def test_the_chat_script_puts_no_english_on_the_page_without_translation():
    assert JS_BARE_TEXT.findall(CHAT_JS.read_text()) == []
    assert JS_BARE_TEXT.findall('showNotice("Oops", "bad"); node.textContent = "Hi";')  # the check can fail


def test_every_chat_script_string_has_a_korean_translation():
    msgids = [msgid.replace('\\"', '"') for msgid in JS_MSGID.findall(CHAT_JS.read_text())]
    with KO_JS_CATALOGUE.open("rb") as compiled:
        korean = gettext.GNUTranslations(compiled)
    missing = [msgid for msgid in msgids if korean.gettext(msgid) == msgid]
    assert len(msgids) > 30
    assert missing == []
