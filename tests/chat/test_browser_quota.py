"""Honest quota messages in a real browser: a small limit still answers (with a shorter
maximum, said so), the bars show what a running turn reserves, and a refusal's figures are
the bars' figures."""
from __future__ import annotations

import re
import uuid

import pytest

from tests.browser import ARTIFACTS, chromium
from tests.chat.conftest import publish_policy
from tests.chat.live import LiveDaphne
from tests.chat.test_browser import TIMEOUT_MS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEN_WORDS = "How do I write a short polite email to my manager?"
# Every text the 10-minute bar shows, kept by a MutationObserver: a reservation is on screen
# only while a turn runs, so the test reads the record instead of racing the stream.
RECORD_BAR_TEXTS = """
window.barTexts = [];
new MutationObserver(() => window.barTexts.push(document.querySelector('#usage-10m .figures').textContent))
  .observe(document.querySelector('#usage-10m .figures'), {childList: true, characterData: true, subtree: true});
"""


@pytest.fixture
def server(alice, tmp_path):
    # The case: a limit of 300 and nothing used; the demo model reserves 1,024 by default.
    publish_policy(alice, ten_minute=300, monthly=1_000_000)
    live = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.01"})
    yield live
    live.stop()


def bar_figures(page) -> tuple[int, int]:
    figures = re.match(r"([\d,]+) / ([\d,]+) tokens", page.text_content("#usage-10m .figures"))
    assert figures is not None
    used, limit = figures.groups()
    return int(used.replace(",", "")), int(limit.replace(",", ""))


def test_a_small_quota_answers_and_a_refusal_matches_the_bars(alice, password, server):
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, server, password)
        page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
        page.wait_for_function("document.querySelector('#usage-10m .figures').textContent.includes('/ 300')")
        page.evaluate(RECORD_BAR_TEXTS)

        # A 10-word question under a 300-token limit is answered, with a shorter maximum, said so.
        page.fill("#prompt", TEN_WORDS)
        page.press("#prompt", "Enter")
        page.wait_for_selector(".message.assistant:not(.streaming)")
        answer = page.locator(".message.assistant").last
        assert page.locator(".inline-error:has-text('quota')").count() == 0
        assert re.search(r"at most [\d,]+ tokens long instead of 1,024", answer.inner_text())
        # While it ran, the bar held the whole reservation (the limit's 300) as reserved.
        seen = page.evaluate("window.barTexts")
        assert any(re.fullmatch(r"300 / 300 tokens · 300 reserved for answers in progress", text) for text in seen), (
            seen
        )
        used, limit = bar_figures(page)
        assert 0 < used < 300
        assert limit == 300

        # Too little room left for a useful answer: refused, and the message's figures are the bar's.
        publish_policy(alice, ten_minute=used + 30, monthly=1_000_000)
        page.click("#new-conversation")
        page.fill("#prompt", TEN_WORDS)
        page.press("#prompt", "Enter")
        error = page.wait_for_selector(".inline-error").inner_text()
        bar_used, bar_limit = bar_figures(page)
        stated = re.search(r"([\d,]+) of ([\d,]+) tokens are used", error)
        assert stated, error
        stated_figures = (int(stated[1].replace(",", "")), int(stated[2].replace(",", "")))
        assert stated_figures == (bar_used, bar_limit) == (used, used + 30)
        reserved = re.search(
            r"reserves ([\d,]+) tokens of your 10-minute quota, about ([\d,]+) for the question .* "
            r"up to 1,024 for the answer \(its maximum length", error,
        )
        assert reserved, error
        # Why it is refused although the bar shows room: the answer that fits is too short.
        room = re.search(r"room for an answer of at most ([\d,]+) tokens, too short to be useful", error)
        assert room, error
        assert int(room[1].replace(",", "")) == bar_limit - bar_used - int(reserved[2].replace(",", ""))
        # What to do: the shorter maximum that fits, a shorter conversation, the reset.
        fits = int(room[1].replace(",", ""))
        assert f"send it again with a shorter maximum answer length: at most {fits} tokens fit" in error
        assert "start a new conversation" in error
        assert "wait until" in error
        page.screenshot(path=str(ARTIFACTS / "chat-quota-refused.png"), full_page=True)

        # The shorter maximum, offered as a button, gets an answer that short, within the limit.
        page.click(f"button.send-shorter:has-text('at most {fits} tokens')")
        page.wait_for_selector(".message.assistant:not(.streaming) .answer-meta")
        answer = page.locator(".message.assistant").last
        assert answer.locator(".inline-error").inner_text() == "The answer was cut at the maximum length."
        output = int(re.search(r", ([\d,]+) out\)", answer.locator(".answer-meta").inner_text())[1].replace(",", ""))
        assert 0 < output <= fits
        bar_used, bar_limit = bar_figures(page)
        assert bar_used <= bar_limit == used + 30
        page.screenshot(path=str(ARTIFACTS / "chat-quota-honest.png"), full_page=True)


def test_a_spent_budget_is_refused_in_dollars(alice, password, tmp_path):
    from dataclasses import replace

    from dataplane.policy import WindowLimits
    from gateway_project.gateway import gateway_store
    from tests.chat.conftest import DEMO_MODEL

    priced = replace(DEMO_MODEL, price_in_per_1k=0.01, price_out_per_1k=0.01)  # 10 micro-USD a token
    policy = publish_policy(alice, models=(priced,))
    gateway_store().policy_put(replace(policy, version=policy.version + 1,
                                       monthly=WindowLimits(total=1_000_000, cost=500)))  # $0.0005
    # The default maximum (1,024 tokens) would cost more than the whole budget, and what the
    # budget pays for (under 50 tokens) is too short for an answer: refused.
    error = refusal_on_the_chat_page(tmp_path, password, locale="en-US")
    assert "more than your whole monthly budget of $0.0005" in error, error
    assert "cheaper model" in error


def refusal_on_the_chat_page(tmp_path, password, *, locale: str) -> str:
    """Sign in, say hello to the demo model, and return the refusal the page shows."""
    live = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.001"})
    try:
        with chromium() as browser:
            page = browser.new_context(locale=locale, viewport={"width": 1200, "height": 800}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            sign_in(page, live, password)
            page.wait_for_selector("#model option[value='demo.echo-v1']", state="attached")
            page.fill("#prompt", "Hello")
            page.press("#prompt", "Enter")
            return page.wait_for_selector(".inline-error").inner_text()
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", "The monthly budget your Research group shares, $0.50, is spent"),
        ("ko-KR", "Research 그룹이 함께 쓰는 월 예산"),
    ],
)
def test_a_spent_group_budget_is_refused_naming_the_group(alice, password, tmp_path, locale, expected):
    from dataclasses import replace

    from dataplane.policy import PooledBudget, pool_owner
    from dataplane.stores.base import TokenCount, pooled_charges
    from dataplane.windows import current_windows
    from gateway_project.gateway import gateway, gateway_store
    from tests.chat.conftest import DEMO_MODEL

    priced = replace(DEMO_MODEL, price_in_per_1k=0.01, price_out_per_1k=0.01)
    # The session shares one store: a pool of this test's own.
    research = PooledBudget(key=pool_owner(uuid.uuid4().hex), name="Research", cost=500_000)  # $0.50
    publish_policy(alice, models=(priced,), pools=(research,))
    # Another member of Research spent the pool this month.
    _, month = current_windows(gateway().clock(), gateway().config.month_timezone)
    charges = pooled_charges(month, (research,))
    spent = gateway_store().reserve(sub="another-member", charges=charges, estimate=TokenCount(cost=1))
    gateway_store().settle(reservation=spent, actual=TokenCount(input=100, output=100, cost=500_000))
    error = refusal_on_the_chat_page(tmp_path, password, locale=locale)
    assert expected in error, error
