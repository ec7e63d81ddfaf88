"""The ID token Django hands the chat page: refreshed with the stored refresh token at the
token endpoint of a local stand-in for Cognito, cached until close to expiry, never stored
by the browser's HTTP cache, and refused with a clear, typed message when it cannot be had."""
from __future__ import annotations

import json

import jwt
import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from dataplane.stores.base import MIN_USEFUL_ANSWER_TOKENS
from tests.aws.appsync import CognitoIssuer
from tests.aws.cognito_hosted_ui import CognitoHostedUi, PoolUser

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/accounts/amazon-cognito/login/callback/"
SECRET = "hosted-ui-client-secret"


@pytest.fixture
def issuer() -> CognitoIssuer:
    return CognitoIssuer()


@pytest.fixture
def hosted_ui(issuer, alice):
    ui = CognitoHostedUi(
        issuer=issuer, client_secret=SECRET, callback_urls=(CALLBACK,),
        users=(PoolUser("alice", "pw", alice.sub, "alice@example.com"),),
    ).start()
    cache.clear()
    with override_settings(
        COGNITO_DOMAIN=ui.url, COGNITO_CLIENT_ID=issuer.client_id, COGNITO_CLIENT_SECRET=SECRET,
        COGNITO_ID_TOKEN_REFRESH_MARGIN_SECONDS=300,
    ):
        yield ui
    ui.stop()
    cache.clear()


def signed_in_with_cognito(user, hosted_ui: CognitoHostedUi) -> SocialToken:
    """What allauth stores after the code flow: the account and its access/refresh tokens."""
    location = hosted_ui.sign_in({"client_id": hosted_ui.issuer.client_id, "redirect_uri": CALLBACK,
                                  "username": "alice", "password": "pw", "state": "s"})
    code = location.split("code=")[1].split("&")[0]
    tokens = hosted_ui.token({"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                              "client_id": hosted_ui.issuer.client_id, "client_secret": SECRET}, "")
    account = SocialAccount.objects.create(user=user, provider="amazon_cognito", uid=user.sub)
    return SocialToken.objects.create(
        account=account, token=tokens["access_token"], token_secret=tokens["refresh_token"]
    )


def test_a_cognito_user_gets_a_fresh_id_token_that_the_browser_must_not_cache(client, alice, hosted_ui, issuer):
    signed_in_with_cognito(alice, hosted_ui)
    client.force_login(alice)

    response = client.get("/api/token")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    claims = jwt.decode(body["idToken"], options={"verify_signature": False})
    assert (claims["sub"], claims["token_use"], claims["aud"]) == (alice.sub, "id", issuer.client_id)
    assert body["expiresAt"] == claims["exp"]
    assert 3500 < body["expiresIn"] <= 3600
    assert hosted_ui.record.refresh_grants == 1
    # A second ask within the token's life is served from the cache, not Cognito.
    assert client.get("/api/token").json()["idToken"] == body["idToken"]
    assert hosted_ui.record.refresh_grants == 1


def test_a_token_within_the_margin_of_expiry_is_refreshed(client, alice, hosted_ui):
    hosted_ui.id_token_seconds = 200  # less than the 300 s margin: never worth caching
    stored = signed_in_with_cognito(alice, hosted_ui)
    client.force_login(alice)

    first = client.get("/api/token").json()["idToken"]
    second = client.get("/api/token").json()["idToken"]

    assert hosted_ui.record.refresh_grants == 2
    assert first != second
    stored.refresh_from_db()
    assert stored.token
    assert stored.expires_at is not None


def test_a_revoked_refresh_token_asks_the_user_to_sign_in_again(client, alice, hosted_ui):
    signed_in_with_cognito(alice, hosted_ui)
    hosted_ui.revoke_refresh_tokens("alice")
    client.force_login(alice)

    response = client.get("/api/token")

    assert response.status_code == 403
    assert response["Cache-Control"] == "no-store"
    (error,) = response.json()["errors"]
    assert error == {
        "errorType": "CognitoSignInRequired",
        "message": "Your Cognito sign-in has expired. Sign in again.",
    }


def test_cognito_out_of_reach_is_a_retryable_error_without_detail(client, alice, hosted_ui):
    signed_in_with_cognito(alice, hosted_ui)
    client.force_login(alice)
    hosted_ui.stop()

    response = client.get("/api/token")

    assert response.status_code == 503
    assert response.json()["errors"][0]["errorType"] == "CognitoUnavailable"
    assert "Traceback" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_a_local_account_has_no_token_and_anonymous_callers_none_either(client, alice, hosted_ui):
    assert client.get("/api/token").status_code == 401
    client.force_login(alice)
    response = client.get("/api/token")
    assert response.status_code == 403
    assert response.json()["errors"][0]["errorType"] == "NoCognitoIdentity"


def chat_config(client) -> dict:
    page = client.get("/").content.decode()
    return json.loads(page.split('<script id="chat-config" type="application/json">')[1].split("</script>")[0])


APPSYNC = {
    "GATEWAY_CHAT_TRANSPORT": "appsync",
    "GATEWAY_EVENTS_REALTIME_ENDPOINT": "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/event/realtime",
    "GATEWAY_EVENTS_HTTP_ENDPOINT": "https://abc.appsync-api.eu-west-1.amazonaws.com/event",
}


def test_the_page_connects_where_the_transport_says(client, alice, hosted_ui):
    client.force_login(alice)
    assert chat_config(client)["transport"] == "local"  # the default, as before

    with override_settings(**APPSYNC):
        # A local account cannot get a token AppSync accepts: the page says what to do.
        config = chat_config(client)
        assert config["transport"] == "unavailable"
        assert "Amazon Cognito" in config["message"]
        with override_settings(GATEWAY_CHAT_LOCAL_FALLBACK=True):
            assert chat_config(client)["transport"] == "local"
        signed_in_with_cognito(alice, hosted_ui)
        config = chat_config(client)
    assert config == {
        "sub": alice.sub, "inbound": f"/inbound/{alice.sub}", "outbound": f"/outbound/{alice.sub}", "meUrl": "/api/me",
        "windows": {"10m": {"title": "10 minutes", "adjective": "10-minute"},
                    "month": {"title": "This month", "adjective": "monthly"}},
        "usageLevels": {"warnPercent": 75, "fullPercent": 90},
        "history": {"url": "/api/conversations/", "kept": False, "days": 0},  # no Django policy: history not kept
        "transport": "appsync", "realtimeUrl": APPSYNC["GATEWAY_EVENTS_REALTIME_ENDPOINT"],
        "httpUrl": APPSYNC["GATEWAY_EVENTS_HTTP_ENDPOINT"], "tokenUrl": "/api/token",
        "minUsefulAnswerTokens": MIN_USEFUL_ANSWER_TOKENS,
    }


def test_a_misconfigured_appsync_transport_is_named_at_check_time():
    with override_settings(
        GATEWAY_CHAT_TRANSPORT="appsync",
        GATEWAY_EVENTS_REALTIME_ENDPOINT="https://x/event/realtime",
        GATEWAY_EVENTS_HTTP_ENDPOINT="",
        COGNITO_DOMAIN="",
        COGNITO_CLIENT_ID="",
        GATEWAY_STORE="sqlite",
    ), pytest.raises(SystemCheckError) as failed:
        call_command("check")
    message = str(failed.value)
    assert "GATEWAY_EVENTS_HTTP_ENDPOINT, COGNITO_DOMAIN, COGNITO_CLIENT_ID" in message
    assert "chat.E003" in message
    assert "GATEWAY_STORE=dynamodb" in message
    with (
        override_settings(GATEWAY_CHAT_TRANSPORT="websocket"),
        pytest.raises(SystemCheckError, match="one of local, appsync"),
    ):
        call_command("check")
