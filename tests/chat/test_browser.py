"""The chat page in a real headless Chromium against a real daphne server.

A person signs in, picks a model, sends, watches the answer stream, sees the usage bars move,
runs into a quota and reads when it resets; the page stays usable at 390 px. Screenshots go
to test-artifacts/chat-*.png.
"""
from __future__ import annotations

import re

import pytest

from tests.browser import ARTIFACTS, chromium
from tests.chat.conftest import publish_policy
from tests.chat.live import LiveDaphne

TIMEOUT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def server(alice, tmp_path):
    publish_policy(alice, ten_minute=100_000, monthly=1_000_000)
    live = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.01"})
    yield live
    live.stop()


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


def sign_in(page, server, password: str) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    page.wait_for_selector("#connection-status[data-state=open]")


def test_chat_in_a_real_browser(alice, password, server, browser):  # noqa: PLR0915 - one session, step by step
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    try:
        sign_in(page, server, password)
        page.wait_for_selector("#model optgroup[label=demo] option[value='demo.echo-v1']", state="attached")
        page.select_option("#model", "demo.echo-v1")
        assert page.text_content("#usage-10m .figures").startswith("0 / 100,000")

        # Enter sends; the answer streams in and renders as Markdown; the bars move.
        page.fill("#prompt", "Show me <img src=x onerror=alert(1)> and **bold**")
        page.press("#prompt", "Enter")
        page.wait_for_selector(".message.assistant.streaming")
        page.wait_for_selector(".message.assistant:not(.streaming) pre.code-block")
        answer = page.locator(".message.assistant").last
        assert "offline demo model" in answer.inner_text()
        assert answer.locator("strong").count() >= 1
        assert answer.locator("li").count() == 3
        assert page.locator(".messages-log img").count() == 0  # echoed markup stays text
        used = page.text_content("#usage-10m .figures")
        assert not used.startswith("0 /")
        assert re.match(r"[\d,]+ / 100,000 tokens", used)
        assert "resets" in page.text_content("#usage-month .reset")
        assert (
            page.evaluate(
                "localStorage.getItem('gateway.chat.model.'"
                " + JSON.parse(document.getElementById('chat-config').textContent).sub)"
            )
            == "demo.echo-v1"
        )
        page.screenshot(path=str(ARTIFACTS / "chat-answer.png"), full_page=True)

        # A 10-minute limit already used up: refused inline, with the figures and the reset time.
        # (Smaller limits that still leave room answer with a shorter maximum: test_browser_quota.)
        publish_policy(alice, ten_minute=5, monthly=1_000_000)
        page.click("#new-conversation")
        page.fill("#prompt", "A second question, over the limit")
        page.press("#prompt", "Enter")
        error = page.wait_for_selector(".inline-error")
        assert re.search(
            r"[\d,]+ of 5 tokens are used\. .* wait until .*, when the 10-minute quota resets\.", error.inner_text()
        )
        assert page.text_content("#usage-10m .figures").endswith("/ 5 tokens")
        assert page.get_attribute("#usage-10m", "data-level") == "bad"  # red from 90 %
        page.screenshot(path=str(ARTIFACTS / "chat-quota.png"), full_page=True)

        # The conversation is kept: a new one starts empty, the old one comes back from the list.
        page.click("#new-conversation")
        assert page.locator(".message").count() == 0
        page.set_viewport_size({"width": 390, "height": 800})
        page.click("#toggle-sidebar")
        assert page.locator(".conversation-list .conversation").count() == 2
        page.click(".conversation-list .conversation >> nth=1")  # the first one, now listed second
        assert page.locator(".message.assistant").count() == 1
        assert "offline demo model" in page.locator(".message.assistant").inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "chat-mobile.png"), full_page=True)

        # The browser keeps no conversation (a shared computer): they are on the server, or,
        # as here with no Django policy that keeps history, on this page only
        # (test_browser_history.py follows them to a second browser).
        page.set_viewport_size({"width": 1200, "height": 800})
        assert not page.evaluate("Object.keys(localStorage).some(k => k.startsWith('gateway.chat.conversations.'))")
        page.click("form[data-sign-out] button")
        page.wait_for_url(re.compile(r".*/accounts/login/.*"))
        assert console_errors == []
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "chat-failure.png"), full_page=True)
        print(server.log())  # noqa: T201 - pytest shows it with the failure
        raise
