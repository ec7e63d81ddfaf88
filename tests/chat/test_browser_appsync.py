"""The chat page on the AppSync transport, in Chromium, end to end through the AWS twin.

A person signs in through a local stand-in for Cognito's hosted UI (tests/aws/cognito_hosted_ui.py,
sharing keys with the AppSync emulator's issuer); the page, served by a real daphne with
`GATEWAY_CHAT_TRANSPORT=appsync`, connects straight to the AppSync Events emulator with the ID
token Django hands it; the chat Lambda runs under the twin's enforced IAM and answers through
the emulator; `/api/me` reads the same DynamoDB windows (moto). ID tokens live 12 seconds, so
the page renews its token and reconnects while the test runs, and must keep chatting.
Screenshots go to test-artifacts/appsync-*.png.
"""
from __future__ import annotations

import re
import secrets
import time

import jwt
import pytest

from quotas.models import QuotaPolicy
from tests.aws import appsync
from tests.aws.cognito_hosted_ui import CognitoHostedUi, PoolUser
from tests.browser import ARTIFACTS, chromium
from tests.chat.live import LiveDaphne
from tests.dataplane.conftest import ALICE, MODEL, make_policy

chat_api = appsync.chat_api  # the fixture

TIMEOUT_MS = 20_000
ID_TOKEN_SECONDS = 12
PASSWORD = "Correct-Horse-9-Battery!"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def wait_until(page, condition, *, timeout_s: float = 30, what: str = "") -> None:
    """Wait for a condition of the test's own process (the emulator, the issuer)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)  # lets the page run while the condition is polled


@pytest.fixture
def hosted_ui(chat_api):
    ui = CognitoHostedUi(
        issuer=chat_api.cognito,
        client_secret=secrets.token_urlsafe(16),
        users=(PoolUser("alice", PASSWORD, ALICE, "alice@example.com"),),
        id_token_seconds=ID_TOKEN_SECONDS,
    ).start()
    yield ui
    ui.stop()


@pytest.fixture
def server(chat_api, hosted_ui, aws_twin, monkeypatch, tmp_path):
    # Quota changes reach the Lambda's next turn (its policy cache is read at cold start).
    monkeypatch.setenv("GATEWAY_POLICY_CACHE_SECONDS", "0")
    # A Django policy that keeps chat history: the page saves each turn through the history
    # API whichever door streamed it, here AppSync.
    QuotaPolicy.objects.create(name="Standard", is_default=True, ten_minute_total=100_000, monthly_total=1_000_000)
    emulator = chat_api.emulator
    live = LiveDaphne(tmp_path, extra_env={
        # What a deployer sets (the rest, table names and region, come from the stack outputs
        # the chat Lambda's environment already carries, pointed at the twin).
        "GATEWAY_CHAT_TRANSPORT": "appsync",
        "GATEWAY_EVENTS_REALTIME_ENDPOINT": emulator.realtime_endpoint,
        "GATEWAY_EVENTS_HTTP_ENDPOINT": emulator.http_endpoint,
        "GATEWAY_STORE": "dynamodb",
        "GATEWAY_DYNAMODB_ENDPOINT_URL": aws_twin.endpoint_url,
        "COGNITO_DOMAIN": hosted_ui.url,
        "COGNITO_CLIENT_ID": chat_api.cognito.client_id,
        "COGNITO_CLIENT_SECRET": hosted_ui.client_secret,
        "COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS": "4",
        "CHAT_LIVE_CACHE_PREFIX": f"appsync-{secrets.token_hex(4)}",
    })
    hosted_ui.callback_urls.append(f"{live.url}/accounts/amazon-cognito/login/callback/")
    yield live
    live.stop()


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


def publish_limits(chat_api, *, ten_minute: int) -> None:
    """As an admin's change reaches the store: a newer version (Django's are microseconds)."""
    version = time.time_ns() // 1000
    assert chat_api.store.policy_put(make_policy(ALICE, version=version, ten_minute=ten_minute, monthly=1_000_000))


def sign_in_with_cognito(page, server) -> None:
    page.goto(f"{server.url}/accounts/amazon-cognito/login/?process=login")
    page.click("form button[type=submit]")  # allauth's "continue to Amazon Cognito"
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[name=signInSubmitButton]")
    page.wait_for_url(f"{server.url}/")


def ask(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def test_chat_on_appsync_with_cognito_sign_in_across_token_renewals(  # noqa: PLR0915 - one session, step by step
    chat_api, hosted_ui, server, browser, bedrock_server
):
    bedrock_server.script(MODEL, chunks=["Tokens ", "are **word ", "pieces**", "."], usage=(40, 20), chunk_delay=0.05)
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        sign_in_with_cognito(page, server)
        # Signing in created the user, and Django published their policy; the admin's allow-list
        # for this test replaces it.
        publish_limits(chat_api, ten_minute=100_000)
        page.reload()
        page.wait_for_selector("#connection-status[data-state=open]")
        # The page connected to the emulator itself, with the Cognito ID token Django handed out.
        first = chat_api.emulator.connected[0]
        assert first.mode == appsync.USER_POOL
        assert first.identity["sub"] == ALICE
        assert first.identity["claims"]["token_use"] == "id"
        token_response = page.evaluate("fetch('/api/token').then(r => [r.status, r.headers.get('cache-control')])")
        assert token_response == [200, "no-store"]

        page.wait_for_selector(f"#model option[value='{MODEL}']", state="attached")
        page.select_option("#model", MODEL)
        assert page.text_content("#usage-10m .figures").startswith("0 / 100,000")

        # A turn streams through AppSync and the chat Lambda; the bars move.
        ask(page, "What is a token?")
        page.wait_for_selector(".message.assistant.streaming")
        page.wait_for_selector(".message.assistant:not(.streaming) strong")
        assert page.locator(".message.assistant .body").last.inner_text().strip() == "Tokens are word pieces."
        assert page.text_content("#usage-10m .figures") == "60 / 100,000 tokens"
        # /api/me reads the same DynamoDB window the Lambda wrote.
        me = page.evaluate("fetch('/api/me').then(r => r.json())")
        assert me["usage"]["10m"]["used"] == 60
        # The turn is in the user's history on the server, with the model's usage from AppSync's metadata.
        page.wait_for_function("/^[0-9a-f-]{36}$/.test(document.querySelector('.conversation-item')?.dataset.conversationId)")
        saved = page.evaluate(
            "fetch('/api/conversations/').then(r => r.json())"
            ".then(list => fetch('/api/conversations/' + list.conversations[0].id)).then(r => r.json())"
        )
        assert [(m["role"], m["content"]) for m in saved["messages"]] == [
            ("user", "What is a token?"), ("assistant", "Tokens are **word pieces**.")]
        assert (saved["messages"][1]["inputTokens"], saved["messages"][1]["outputTokens"]) == (40, 20)
        assert saved["messages"][1]["modelId"] == MODEL
        page.screenshot(path=str(ARTIFACTS / "appsync-answer.png"), full_page=True)

        # Over the 10-minute quota: refused inline, saying when it resets; Bedrock is not called.
        asked_before = len(bedrock_server.requests_for(MODEL))
        # Room for 40: too little for a useful answer even with a shorter maximum.
        publish_limits(chat_api, ten_minute=100)
        page.click("#new-conversation")
        ask(page, "One more, over the limit")
        error = page.wait_for_selector(".inline-error")
        assert re.search(
            r"60 of 100 tokens are used\. .* wait until .*, when the 10-minute quota resets\.", error.inner_text()
        )
        assert page.text_content("#usage-10m .figures") == "60 / 100 tokens"  # the message's figures
        assert len(bedrock_server.requests_for(MODEL)) == asked_before
        page.screenshot(path=str(ARTIFACTS / "appsync-quota.png"), full_page=True)

        # Token renewal: the page asks Django for a fresh token before the first one lapses,
        # Django refreshes it at Cognito's token endpoint, and the page reconnects with it.
        publish_limits(chat_api, ten_minute=100_000)
        first_expiry = first.identity["claims"]["exp"]
        wait_until(
            page,
            lambda: any(
                c.identity["claims"]["iat"] > first.identity["claims"]["iat"] for c in chat_api.emulator.connected
            ),
            what="a connection opened with a renewed token",
        )
        page.wait_for_selector("#connection-status[data-state=open]")
        page.wait_for_function(f"Date.now() / 1000 > {first_expiry} + 1", timeout=TIMEOUT_MS)  # the first token lapsed
        assert hosted_ui.record.refresh_grants >= 2

        # Back in the first conversation, which survived the reconnects, the chat goes on.
        page.click(".conversation-list .conversation >> nth=1")
        assert page.locator(".message.assistant").count() == 1
        page.wait_for_selector("#connection-status[data-state=open]")
        ask(page, "And what is a window?")
        page.wait_for_function("document.querySelectorAll('.message.assistant:not(.streaming)').length === 2")
        assert page.locator(".message.assistant .body").last.inner_text().strip() == "Tokens are word pieces."
        assert page.locator(".messages-log .inline-error").count() == 0
        renewed = jwt.decode(hosted_ui.record.issued_id_tokens[-1], options={"verify_signature": False})
        assert renewed["exp"] > first_expiry

        # Signed out everywhere in Cognito: the next renewal is refused, the connection ends
        # with its token, and the page says to sign in again instead of retrying forever.
        hosted_ui.revoke_refresh_tokens("alice")
        notice = page.wait_for_selector(
            "#notice:has-text('Your Cognito sign-in has expired. Sign in again.')",
            timeout=2 * ID_TOKEN_SECONDS * 1000 + TIMEOUT_MS,
        )
        assert notice.is_visible()
        page.wait_for_selector("#connection-status[data-state=closed]")
        page.screenshot(path=str(ARTIFACTS / "appsync-signed-out.png"), full_page=True)
        assert page_errors == []
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "appsync-failure.png"), full_page=True)
        print(server.log())  # noqa: T201 - pytest shows it with the failure
        raise


def test_a_local_account_is_told_to_sign_in_with_cognito(alice, password, chat_api, server, browser):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(f"{server.url}/accounts/login/")
    page.fill("input[name=login]", "alice")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    notice = page.wait_for_selector("#notice:not([hidden])")
    assert "needs an Amazon Cognito sign-in" in notice.inner_text()
    assert page.is_disabled("#send")
    page.fill("#prompt", "Enter must not send either")
    page.press("#prompt", "Enter")
    assert page.locator(".message").count() == 0
    assert chat_api.emulator.connected == []
    assert page_errors == []
