"""Conversation history kept on the server, in a real browser against a real daphne server.

A person chats (one conversation of two turns, one private conversation), signs out, signs
in again in a second browser context (no shared storage) and finds the conversation there
but not the private one; renames it, searches it, exports it and deletes it. A policy that
keeps no history is said so on the page, and nothing reaches the server.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from quotas.models import QuotaPolicy
from tests.browser import ARTIFACTS, chromium
from tests.chat.conftest import publish_policy
from tests.chat.live import LiveDaphne
from tests.chat.test_browser import TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "How long should kimchi ferment?"


def live_server(alice, tmp_path, *, retention_days: int | None) -> LiveDaphne:
    # The Django policy decides retention; it is created before the data-plane policy is
    # published, whose version then goes past the one this save publishes.
    QuotaPolicy.objects.create(
        name="Standard", is_default=True, ten_minute_total=100_000, monthly_total=1_000_000,
        history_retention_days=retention_days,
    )
    publish_policy(alice, ten_minute=100_000, monthly=1_000_000)
    return LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.005"})


@pytest.fixture
def server(alice, tmp_path):
    live = live_server(alice, tmp_path, retention_days=30)
    yield live
    live.stop()


def ask(page, text: str) -> None:
    answers = page.locator(".message.assistant:not(.streaming)").count()
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")
    page.wait_for_function(f"document.querySelectorAll('.message.assistant:not(.streaming)').length > {answers}")


# Every row carries the server's id: each turn shown has been saved.
ALL_SAVED = (
    "[...document.querySelectorAll('.conversation-item')].every(i => /^[0-9a-f-]{36}$/.test(i.dataset.conversationId))"
)


def saved_titles(page) -> list[str]:
    """Titles of the conversations the server holds (their list rows carry the server's id)."""
    return page.eval_on_selector_all(
        ".conversation-item",
        "items => items.filter(i => /^[0-9a-f-]{36}$/.test(i.dataset.conversationId))"
        ".map(i => i.querySelector('.conversation').textContent)",
    )


def row(page, title: str):
    return page.locator(".conversation-item", has=page.locator(".conversation", has_text=title))


@contextmanager
def evidence(page, server, name: str) -> Iterator[None]:
    """On failure: a screenshot, and the server's log attached to the error."""
    try:
        yield
    except BaseException as error:
        page.screenshot(path=str(ARTIFACTS / f"history-failure-{name}.png"), full_page=True)
        error.add_note(server.log())
        raise


def chat_then_sign_out(browser, server, password: str, errors: list[str]) -> None:
    first = browser.new_context(viewport={"width": 1200, "height": 800})
    page = first.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("pageerror", lambda error: errors.append(str(error)))
    with evidence(page, server, "first-browser"):
        sign_in(page, server, password)
        assert "Kept on the server for 30 days" in page.inner_text("#history-hint")
        page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
        ask(page, QUESTION)
        ask(page, "And in a warm room?")
        page.wait_for_function(f"document.querySelectorAll('.conversation-item').length === 1 && {ALL_SAVED}")

        # A private conversation: marked in the list, gone once the user signs out.
        page.click("#new-conversation")
        page.check("#private")
        ask(page, "My private question")
        page.wait_for_function(f"document.querySelectorAll('.conversation-item').length === 2 && {ALL_SAVED}")
        assert row(page, "My private question").locator(".private-badge").count() == 1
        page.uncheck("#private")
        page.click("form[data-sign-out] button")
        page.wait_for_url(re.compile(r".*/accounts/login/.*"))
    first.close()


def find_rename_and_search(page) -> None:
    page.wait_for_selector(".conversation-item")
    assert saved_titles(page) == [QUESTION]  # the private one went at sign-out
    page.click(f".conversation >> text={QUESTION}")
    page.wait_for_selector(".message.assistant")
    assert page.locator(".message.user .body").all_inner_texts() == [QUESTION, "And in a warm room?"]
    assert "offline demo model" in page.locator(".message.assistant").first.inner_text()

    # Rename in place; the new title is the server's (a reload shows it).
    conversation = row(page, QUESTION)
    conversation.locator("summary").click()
    conversation.locator("[data-action=rename]").click()
    page.fill(".conversation-title-input", "Kimchi notes")
    page.press(".conversation-title-input", "Enter")
    page.wait_for_selector(".conversation >> text=Kimchi notes")
    page.reload()
    page.wait_for_selector(".conversation >> text=Kimchi notes")
    assert saved_titles(page) == ["Kimchi notes"]

    # Search finds it by what was said in it, and says so when nothing matches.
    page.fill("#conversation-search", "WARM ROOM")
    page.wait_for_function("document.querySelector('.conversation-item .conversation')?.textContent === 'Kimchi notes'")
    page.fill("#conversation-search", "sourdough")
    page.wait_for_selector(".conversation-empty")
    assert page.inner_text(".conversation-empty") == "No conversation matches “sourdough”."
    page.fill("#conversation-search", "")
    page.wait_for_selector(".conversation >> text=Kimchi notes")


def export_and_delete(page) -> None:
    # Export: the Markdown download holds the conversation.
    conversation = row(page, "Kimchi notes")
    conversation.locator("summary").click()
    with page.expect_download() as download:
        conversation.locator("[data-action=export-markdown]").click()
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert markdown.startswith("# Kimchi notes\n")
    assert "## You\n\nAnd in a warm room?" in markdown
    page.screenshot(path=str(ARTIFACTS / "history-second-browser.png"), full_page=True)

    # Delete, after confirming; the server no longer has it.
    page.once("dialog", lambda dialog: dialog.accept())
    conversation.locator("[data-action=delete]").click()
    page.wait_for_function("document.querySelectorAll('.conversation-item').length === 0")
    assert page.locator(".message").count() == 0
    page.reload()
    page.wait_for_selector("#connection-status[data-state=open]")
    assert page.locator(".conversation-item").count() == 0
    assert page.evaluate("fetch('/api/conversations/').then(r => r.json())")["conversations"] == []


def test_history_follows_the_user_to_a_second_browser(alice, password, server):
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with chromium() as browser:
        chat_then_sign_out(browser, server, password, errors)
        # Another browser: nothing in common with the first but the account.
        second = browser.new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
        page = second.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        with evidence(page, server, "second-browser"):
            sign_in(page, server, password)
            find_rename_and_search(page)
            export_and_delete(page)
    assert errors == []


def test_a_policy_that_keeps_no_history_says_so_and_sends_nothing(alice, password, tmp_path):
    server = live_server(alice, tmp_path, retention_days=0)
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            history_calls: list[str] = []
            page.on("request", lambda request: history_calls.append(f"{request.method} {request.url}")
                    if "/api/conversations/" in request.url else None)
            sign_in(page, server, password)
            assert "does not keep chat history" in page.inner_text("#history-hint")
            assert page.is_hidden("#conversation-search")
            page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
            ask(page, QUESTION)
            # The conversation is there for this page, and nowhere else.
            assert page.locator(".conversation-item").count() == 1
            assert history_calls == []
            listed = page.evaluate("fetch('/api/conversations/').then(r => r.json())")
            assert listed["conversations"] == []
            assert json.dumps(listed["retention"]) == '{"kept": false, "days": 0}'
    finally:
        server.stop()


def test_older_conversations_load_on_demand(alice, password, tmp_path):
    from chat.history.payloads import MessageInput
    from chat.history.services import conversation_create

    QuotaPolicy.objects.create(name="Standard", is_default=True, ten_minute_total=100_000, monthly_total=1_000_000)
    for n in range(23):
        conversation_create(user=alice, title=f"Conversation {n:02d}",
                            messages=(MessageInput(role="user", content=f"Question {n}"),))
    publish_policy(alice)
    server = LiveDaphne(tmp_path)
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            with evidence(page, server, "older"):
                sign_in(page, server, password)
                page.wait_for_selector(".conversation-item")
                assert page.locator(".conversation-item").count() == 20
                assert page.inner_text(".conversation-item .conversation >> nth=0") == "Conversation 22"
                page.click("#conversation-more")
                page.wait_for_function("document.querySelectorAll('.conversation-item').length === 23")
                assert page.is_hidden("#conversation-more")
                page.click(".conversation >> text=Conversation 00")
                page.wait_for_selector(".message.user")
                assert page.inner_text(".message.user .body") == "Question 0"
    finally:
        server.stop()
