"""Every string a person reads is translatable and translated into Korean: the chat page, the
reports pages and the gateway's admin pages.

Fails on a new English string in those templates or scripts that is not marked for
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
    "templates/admin/quotas/governance_panel.html", "templates/admin/quotas/model_access.html",
    "templates/admin/quotas/model_access_row.html", "templates/admin/quotas/modelcatalogueentry/change_form.html",
    "templates/admin/quotas/modelcatalogueentry/change_list.html",
    "templates/analytics/report_list.html", "templates/analytics/report_detail.html",
    "templates/analytics/run_detail.html",
]
# The reports' scripts: run.js shows only words the server sent (already translated).
REPORT_JS = [ROOT / "static/analytics/charts.js", ROOT / "static/analytics/run.js"]
# Every module of the chat page (chat.js and the modules it imports).
CHAT_SCRIPTS = sorted((ROOT / "static/chat").glob("*.js"))
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


def template_msgids(source: str) -> list[str | tuple[str, str]]:
    """Each msgid a template asks for; a plural block gives (singular, plural)."""

    def msgid(text: str) -> str:
        return re.sub(r"{{\s*(\w+)\s*}}", r"%(\1)s", text).replace("%%", "%").replace("%", "%%").replace("%%(", "%(")

    blocks: list[str | tuple[str, str]] = []
    for block in BLOCK_TRANSLATE.findall(source):
        singular, plural_mark, plural = block.partition("{% plural %}")
        blocks.append((msgid(singular), msgid(plural)) if plural_mark else msgid(block))
    return [match[1] for match in TRANSLATE_TAG.findall(source)] + blocks


def missing_in_korean(msgids: list[str | tuple[str, str]]) -> list[str | tuple[str, str]]:
    with translation.override("ko"):
        return [
            msgid
            for msgid in msgids
            if (
                translation.ngettext(*msgid, 2) == msgid[1]
                if isinstance(msgid, tuple)
                else translation.gettext(msgid) == msgid
            )
        ]


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_chat_page_templates_hold_no_english_outside_translate_tags(template):
    assert untranslated_text((ROOT / template).read_text()) == []


def test_the_checker_finds_untranslated_template_text():
    assert untranslated_text('<p title="Hello">{% translate "Fine" %} Stop</p>') == ["Hello", "Stop"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_string_has_a_korean_translation(template):
    msgids = template_msgids((ROOT / template).read_text())
    assert msgids
    assert missing_in_korean(msgids) == []


def test_the_msgid_reader_understands_plural_blocks():
    source = (
        "{% blocktranslate count counter=n %}{{ counter }} row{% plural %}{{ counter }} rows{% endblocktranslate %}"
    )
    assert template_msgids(source) == [("%(counter)s row", "%(counter)s rows")]
    untranslated = ("%(counter)s apple", "%(counter)s apples")
    assert missing_in_korean([untranslated]) == [untranslated]


@pytest.mark.parametrize("script", CHAT_SCRIPTS, ids=lambda path: path.name)
def test_the_chat_scripts_put_no_english_on_the_page_without_translation(script):
    assert JS_BARE_TEXT.findall(script.read_text()) == []
    assert JS_BARE_TEXT.findall('showNotice("Oops", "bad"); node.textContent = "Hi";')  # the check can fail


def test_every_chat_script_string_has_a_korean_translation():
    msgids = [
        msgid.replace('\\"', '"') for script in CHAT_SCRIPTS for msgid in JS_MSGID.findall(script.read_text())
    ]
    with KO_JS_CATALOGUE.open("rb") as compiled:
        korean = gettext.GNUTranslations(compiled)
    missing = [msgid for msgid in msgids if korean.gettext(msgid) == msgid]
    assert len(msgids) > 60  # an empty match would pass without checking anything
    assert missing == []


@pytest.mark.parametrize("script", REPORT_JS, ids=lambda path: path.name)
def test_the_report_scripts_put_no_english_on_the_page_without_translation(script):
    assert JS_BARE_TEXT.findall(script.read_text()) == []


def test_every_report_script_string_has_a_korean_translation():
    msgids = [msgid.replace('\\"', '"') for script in REPORT_JS for msgid in JS_MSGID.findall(script.read_text())]
    with KO_JS_CATALOGUE.open("rb") as compiled:
        korean = gettext.GNUTranslations(compiled)
    assert msgids
    assert [msgid for msgid in msgids if korean.gettext(msgid) == msgid] == []


def test_report_titles_of_the_catalogue_are_translated():
    from analytics.catalogue import REPORTS

    texts = [report[key] for report in REPORTS for key in ("title", "description")]
    assert missing_in_korean(texts) == []
