"""What a person does with the messages, in a real Chromium against a real daphne server:
copy (a message, a code block), regenerate, edit and resend, Escape to stop, the banner after
signing in, the composer growing, badges for cached and prepared answers, each answer's model,
tokens and time, the bars during a slow answer, and the conversation drawer on a phone.
Screenshots go to test-artifacts/chat-actions-*.png.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dataplane.cache_keys import prepared_question_key
from dataplane.stores.base import PreparedAnswer
from gateway_project.gateway import gateway_store
from tests.browser import ARTIFACTS, chromium
from tests.chat.conftest import publish_policy
from tests.chat.live import LiveDaphne
from tests.chat.test_browser import TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PREPARED_QUESTION = "How do I reset my VPN password?"
PREPARED_TEXT = "Open the self-service portal and choose **Reset VPN password**."
# The demo model writes about a chunk per `GATEWAY_DEMO_CHUNK_DELAY`: slow enough to watch the
# bars and press Escape mid-answer, quick enough for a test.
SLOW_CHUNKS = "0.08"


@pytest.fixture
def server(alice, tmp_path):
    publish_policy(alice, ten_minute=100_000, monthly=1_000_000)
    gateway_store().prepared_put(
        PreparedAnswer(question_key=prepared_question_key(PREPARED_QUESTION), model_id="", text=PREPARED_TEXT)
    )
    live = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": SLOW_CHUNKS})
    yield live
    live.stop()


def ask(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    page.wait_for_selector("#messages:not(.busy)", state="attached")
    page.wait_for_selector(".message.assistant.streaming", state="detached")


def figures(page, window: str = "10m") -> str:
    return page.text_content(f"#usage-{window} .figures")


def used_tokens(page, window: str = "10m") -> int:
    found = re.match(r"([\d,]+) /", figures(page, window))
    assert found, figures(page, window)
    return int(found[1].replace(",", ""))


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


@contextmanager
def evidence_on_failure(page, server) -> Iterator[None]:
    try:
        yield
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "chat-actions-failure.png"), full_page=True)
        print(server.log())  # noqa: T201 - the server's side of a failure, shown by pytest
        raise


def bottom(page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    return box["y"] + box["height"]


def tokens_in_footer(message) -> int:
    meta = message.locator(".answer-meta").inner_text()
    found = re.search(r"([\d,]+) tokens \(", meta)
    assert found, meta
    return int(found[1].replace(",", ""))


def check_banner_and_composer(page) -> None:
    # The "signed in" banner leaves the composer in view at 1280x800, and goes on request.
    banner = page.locator("ul.messages li")
    assert banner.count() == 1
    assert "alice" in banner.inner_text()
    assert bottom(page, "#composer") <= 800
    banner.locator("button.dismiss").click()
    assert page.locator("ul.messages").count() == 0
    # The composer grows with its content, up to a third of the window, then scrolls.
    heights = []
    for lines in (1, 4, 60):
        page.fill("#prompt", "line\n" * lines)
        heights.append(page.locator("#prompt").bounding_box()["height"])
    assert heights[0] < heights[1] < heights[2] <= 800 / 3 + 1
    page.fill("#prompt", "")


def check_answer_footer_and_copy(page) -> None:
    # An answer: its model, tokens and time, and the bars say the same tokens.
    ask(page, "Show me some code, please")
    answer = page.locator(".message.assistant").last
    meta = answer.locator(".answer-meta").inner_text()
    assert meta.startswith("Demo model (offline) · "), meta
    assert re.search(r"· [\d.]+ s$", meta), meta
    assert tokens_in_footer(answer) == used_tokens(page) > 0
    assert answer.locator(".source-badge").count() == 0
    # Copy: the answer as written (Markdown), a code block's code alone, the question.
    answer.locator("button.copy").click()
    copied = clipboard(page)
    assert copied.startswith("Hello! I am the **offline demo model**")
    assert "```" in copied
    code = answer.locator("pre.code-block code").first.inner_text()
    answer.locator("button.copy-code").first.click()
    assert clipboard(page) == code
    assert "```" not in code
    page.locator(".message.user").last.locator("button.copy").click()
    assert clipboard(page) == "Show me some code, please"


def check_regenerate_and_edit(page) -> None:
    # Regenerate: a new answer from the model in place of the last one, never the cache.
    ask(page, "A second question")
    before = used_tokens(page)
    page.locator(".message.assistant").last.locator("button.regenerate").click()
    page.wait_for_selector(".message.assistant.streaming", state="detached")
    assert page.locator(".message").count() == 4
    regenerated = page.locator(".message.assistant").last
    assert "A second question" in regenerated.inner_text()
    assert regenerated.locator(".source-badge").count() == 0
    assert used_tokens(page) > before  # billed: the model wrote it again
    assert page.locator(".message.assistant").first.locator("button.regenerate").count() == 0
    # Edit the first question and resend: the answers after it are dropped.
    page.locator(".message.user").first.locator("button.edit").click()
    page.fill(".edit-question textarea", "An edited first question")
    page.press(".edit-question textarea", "Enter")
    page.wait_for_selector(".message.assistant.streaming", state="detached")
    assert page.locator(".message").count() == 2
    assert page.locator(".message.user").inner_text().startswith("An edited first question")
    assert "An edited first question" in page.locator(".message.assistant").inner_text()
    page.screenshot(path=str(ARTIFACTS / "chat-actions-answer.png"), full_page=True)


def check_cached_and_prepared_badges(page) -> None:
    # The same first question in a new conversation comes from the cache, and says so.
    page.click("#new-conversation")
    ask(page, "An edited first question")
    cached = page.locator(".message.assistant").last
    assert cached.locator(".source-badge.cached").inner_text().startswith("Cached answer")
    assert "from-cache" in cached.get_attribute("class")
    assert "no tokens used" in cached.locator(".answer-meta").inner_text()
    # A prepared answer is the organisation's text, marked as such, not a model's.
    page.click("#new-conversation")
    spent = used_tokens(page)
    ask(page, PREPARED_QUESTION)
    prepared = page.locator(".message.assistant").last
    assert prepared.locator(".source-badge.prepared").inner_text().startswith("Prepared answer")
    assert "Reset VPN password" in prepared.locator(".body").inner_text()
    assert prepared.locator("button.regenerate").count() == 0  # it would be the same text again
    assert used_tokens(page) == spent
    page.screenshot(path=str(ARTIFACTS / "chat-actions-badges.png"), full_page=True)


def test_copy_regenerate_edit_and_badges(alice, password, server):
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        with evidence_on_failure(page, server):
            sign_in(page, server, password)
            page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
            check_banner_and_composer(page)
            check_answer_footer_and_copy(page)
            check_regenerate_and_edit(page)
            check_cached_and_prepared_badges(page)
            assert errors == []


def reserved_of(text: str) -> int | None:
    found = re.search(r"· ([\d,]+) reserved", text)
    return int(found[1].replace(",", "")) if found else None


RESERVED_BELOW = """(below) => {
  const found = document.querySelector('#usage-10m .figures').textContent.match(/· ([\\d,]+) reserved/);
  return found && Number(found[1].replace(/,/g, '')) < below;
}"""


def test_escape_stops_a_slow_answer_and_the_bars_follow_it(alice, password, server):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        with evidence_on_failure(page, server):
            sign_in(page, server, password)
            page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
            page.select_option("#max-tokens", "512")
            page.fill("#prompt", "Tell me a long story about quotas")
            page.press("#prompt", "Enter")

            # While the answer streams the bars hold its reservation (question + the chosen
            # maximum of 512), and the reserved part shrinks as the text arrives.
            page.wait_for_function("document.querySelector('#usage-10m .figures').textContent.includes('reserved')")
            first = reserved_of(figures(page))
            assert first is not None
            assert first > 512
            page.wait_for_function(RESERVED_BELOW, arg=first)
            assert page.locator(".message.assistant.streaming").count() == 1
            page.screenshot(path=str(ARTIFACTS / "chat-actions-streaming.png"), full_page=True)

            # Escape stops it; what streamed is billed, and the bars show exactly that.
            page.keyboard.press("Escape")
            page.wait_for_selector(".message.assistant.streaming", state="detached")
            answer = page.locator(".message.assistant")
            assert "Stopped" in answer.locator(".note").inner_text()
            total = tokens_in_footer(answer)
            assert reserved_of(figures(page)) is None
            assert used_tokens(page) == total > 0
            assert used_tokens(page, "month") == total
            # Stopped early: fewer tokens than the whole demo answer would have cost.
            page.click("#new-conversation")
            ask(page, "Tell me a long story about quotas")
            assert used_tokens(page) - total > total


def on_top(page, selector: str) -> bool:
    """Whether a click at the element's centre reaches it (nothing covers it)."""
    return page.evaluate(
        """(selector) => { const node = document.querySelector(selector); const box = node.getBoundingClientRect();
        const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
        return node === hit || node.contains(hit); }""",
        selector,
    )


def drawer_open(page) -> bool:
    return page.locator("#sidebar").is_visible()


def test_the_conversation_drawer_on_a_phone(alice, password, server):
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.set_default_timeout(TIMEOUT_MS)
        with evidence_on_failure(page, server):
            sign_in(page, server, password)
            page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
            page.locator("ul.messages button.dismiss").click()
            page.wait_for_function("document.querySelector('#usage-10m .figures').textContent.includes('/')")
            # The site's header, the toolbar and the bars take at most a third of the height.
            chrome = page.evaluate("document.querySelector('.usage').getBoundingClientRect().bottom")
            assert chrome <= 844 / 3, chrome
            assert bottom(page, "#composer") <= 844
            ask(page, "A question from a phone")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390

            # The toggle opens the drawer and stays reachable above it to close it again.
            toggle = page.locator("#toggle-sidebar")
            assert not drawer_open(page)
            toggle.click()
            page.click("#new-conversation")  # starting a conversation closes the drawer
            assert not drawer_open(page)
            assert page.locator(".message").count() == 0
            toggle.click()
            assert drawer_open(page)
            assert toggle.get_attribute("aria-expanded") == "true"
            assert on_top(page, "#toggle-sidebar")
            assert on_top(page, "#close-sidebar")
            page.screenshot(path=str(ARTIFACTS / "chat-actions-drawer.png"))
            toggle.click()
            assert not drawer_open(page)
            assert toggle.get_attribute("aria-expanded") == "false"

            # The close button, the backdrop and Escape close it too.
            toggle.click()
            page.click("#close-sidebar")
            assert not drawer_open(page)
            toggle.click()
            page.mouse.click(10, 600)  # the backdrop, left of the drawer
            assert not drawer_open(page)
            toggle.click()
            page.keyboard.press("Escape")
            assert not drawer_open(page)

            # Picking a conversation opens it and closes the drawer, composer still in view.
            toggle.click()
            page.click(".conversation-list .conversation")
            assert not drawer_open(page)
            assert "A question from a phone" in page.locator(".message.user").inner_text()
            assert bottom(page, "#composer") <= 844
            page.screenshot(path=str(ARTIFACTS / "chat-actions-mobile.png"))
