"""A Korean-language session in a real browser: the page, the answer's notes, a refusal whose
figures are the bars', Korean line breaking; then the switch to English, kept for the user."""
from __future__ import annotations

import re

import pytest

from tests.browser import ARTIFACTS, chromium
from tests.chat.conftest import publish_policy
from tests.chat.live import LiveDaphne
from tests.chat.test_browser import TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "토큰이 무엇인지 짧고 쉽게 설명해 주세요. 예시도 하나 들어 주세요."


@pytest.fixture
def server(alice, tmp_path):
    publish_policy(alice, ten_minute=300, monthly=1_000_000)
    live = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.01"})
    yield live
    live.stop()


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_a_korean_session(alice, password, server):
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        korean = browser.new_context(locale="ko-KR", viewport={"width": 1200, "height": 800})
        page = korean.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{server.url}/accounts/login/")
        assert page.get_attribute("html", "lang") == "ko"
        sign_in(page, server, password)

        # The page and its script speak Korean (the browser's language; nothing chosen yet).
        assert page.get_attribute("html", "lang") == "ko"
        assert page.inner_text("#new-conversation").strip() == "+ 새 대화"
        assert page.inner_text("#connection-status") == "연결됨"
        assert page.get_attribute("#prompt", "placeholder").startswith("메시지를 입력하세요")
        page.wait_for_function("/ \\/ 300 토큰$/.test(document.querySelector('#usage-10m .figures').textContent)")

        page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
        page.fill("#prompt", QUESTION)
        page.press("#prompt", "Enter")
        page.wait_for_selector(".message.assistant:not(.streaming)")
        answer = page.locator(".message.assistant").last
        assert re.search(r"1,024 토큰 대신 최대 [\d,]+ 토큰까지입니다", answer.inner_text())
        # Its actions and figures are Korean too.
        assert answer.locator("button.copy").inner_text() == "답변 복사"
        assert answer.locator("button.regenerate").inner_text() == "다시 생성"
        footer = answer.locator(".answer-meta").inner_text()
        assert re.search(r"[\d,]+ 토큰 \(입력 [\d,]+, 출력 [\d,]+\) · [\d.]+초$", footer), footer
        # Korean keeps words whole when a line breaks.
        assert page.eval_on_selector(".message.user", "node => getComputedStyle(node).wordBreak") == "keep-all"
        used = number(re.match(r"([\d,]+) / 300 토큰", page.text_content("#usage-10m .figures"))[1])

        # A refusal in Korean whose figures are the bar's.
        publish_policy(alice, ten_minute=used + 30, monthly=1_000_000)
        page.click("#new-conversation")
        page.fill("#prompt", QUESTION)
        page.press("#prompt", "Enter")
        error = page.wait_for_selector(".inline-error").inner_text()
        stated = re.search(r"([\d,]+) 토큰 중 ([\d,]+) 토큰을 사용했습니다", error)
        bar = re.match(r"([\d,]+) / ([\d,]+) 토큰", page.text_content("#usage-10m .figures"))
        assert stated, error
        assert bar, error
        assert (number(stated[2]), number(stated[1])) == (number(bar[1]), number(bar[2])) == (used, used + 30)
        assert "보내지 않았습니다" in error
        assert "초기화되는" in error
        assert "답변의 최대 길이" in error
        assert "더 짧게 질문하거나 새 대화 시작하기" in error  # the question alone leaves no room
        page.screenshot(path=str(ARTIFACTS / "chat-korean.png"), full_page=True)

        # The switch: English, kept on the user, so another Korean browser shows English too.
        with page.expect_navigation():
            page.select_option("#language", "en")
        assert page.get_attribute("html", "lang") == "en"
        assert page.inner_text("#new-conversation").strip() == "+ New conversation"
        another = browser.new_context(locale="ko-KR").new_page()
        another.set_default_timeout(TIMEOUT_MS)
        sign_in(another, server, password)
        assert another.get_attribute("html", "lang") == "en"
        assert another.inner_text("#connection-status") == "Connected"
