"""`GET /api/me`, `POST /event` (AppSync's HTTP publish) and the chat page."""
from __future__ import annotations

import json

import pytest
from django.test import AsyncClient, Client, override_settings

from tests.chat.conftest import DEMO_MODEL, Session, chat_request, publish_policy, session_cookie, turn_over

pytestmark = pytest.mark.django_db(transaction=True)


def test_me_needs_a_session_and_answers_401_json():
    response = Client().get("/api/me")
    assert response.status_code == 401
    assert response.json()["errors"][0]["errorType"] == "UnauthorizedException"


def test_me_lists_allowed_models_and_window_usage(alice):
    publish_policy(alice, ten_minute=5000, monthly=90_000)
    client = Client()
    client.force_login(alice)
    me = client.get("/api/me").json()
    assert me["sub"] == alice.sub
    assert me["displayName"] == "alice"
    assert me["models"] == [{"id": DEMO_MODEL.model_id, "name": DEMO_MODEL.display_name, "provider": "demo"}]
    assert me["usage"]["10m"]["limit"] == 5000
    assert me["usage"]["10m"]["used"] == 0
    assert me["usage"]["month"]["limit"] == 90_000
    assert me["usage"]["month"]["resetsAt"]
    assert me["channels"]["inbound"] == f"/inbound/{alice.sub}"


def test_the_chat_page_needs_login_and_hands_the_page_its_channels(alice):
    assert Client().get("/").status_code == 302
    client = Client()
    client.force_login(alice)
    page = client.get("/")
    assert page.status_code == 200
    assert f"/outbound/{alice.sub}".encode() in page.content
    assert b"chat/chat.js" in page.content
    assert "csrftoken" in page.cookies


async def _client_for(user) -> AsyncClient:
    from asgiref.sync import sync_to_async

    client = AsyncClient()
    await sync_to_async(client.force_login)(user)
    return client


def _post(client, body, **extra):
    return client.post("/event", data=json.dumps(body), content_type="application/json", **extra)


async def test_http_publish_runs_the_turn_and_answers_on_the_outbound_channel(alice):
    from asgiref.sync import sync_to_async

    await sync_to_async(publish_policy)(alice)
    listener = Session(await sync_to_async(session_cookie)(alice))
    await listener.open()
    await listener.init()
    await listener.subscribe(f"/outbound/{alice.sub}")
    client = await _client_for(alice)
    response = await _post(client, {"channel": f"/inbound/{alice.sub}",
                                     "events": [json.dumps(chat_request(private=True)), "{broken"]})
    assert response.status_code == 200
    body = response.json()
    assert [s["index"] for s in body["successful"]] == [0]
    assert [f["index"] for f in body["failed"]] == [1]
    assert "metadata" in (await listener.events_until(turn_over))[-1]
    await listener.close()


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"channel": "/inbound/{other}", "events": ["{}"]}, 403, "UnauthorizedException"),
        ({"channel": "/outbound/{own}", "events": ["{}"]}, 403, "UnauthorizedException"),
        ({"channel": "no-slash", "events": ["{}"]}, 400, "BadRequestException"),
        ({"channel": "/inbound/{own}", "events": ["{}"] * 6}, 400, "BadRequestException"),
        ({"channel": "/inbound/{own}", "events": []}, 400, "BadRequestException"),
        (["not", "an", "object"], 400, "BadRequestException"),
    ],
)
async def test_http_publish_refusals(alice, bob, body, status, error_type):
    if isinstance(body, dict):
        body = {**body, "channel": body["channel"].format(own=alice.sub, other=bob.sub)}
    response = await _post(await _client_for(alice), body)
    assert response.status_code == status
    assert response.json()["errors"][0]["errorType"] == error_type


async def test_http_publish_needs_a_session():
    response = await _post(AsyncClient(), {"channel": "/inbound/x", "events": ["{}"]})
    assert response.status_code == 401


async def test_http_publish_reads_only_json(alice):
    client = await _client_for(alice)
    form = await client.post("/event", data={"channel": f"/inbound/{alice.sub}", "events": "{}"})
    assert form.status_code == 400
    assert "application/json" in form.json()["errors"][0]["message"]


def test_http_publish_cannot_be_forged_cross_site(alice):
    """CSRF stays on: without the token (what a forged cross-site request lacks) it is refused."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = json.dumps({"channel": f"/inbound/{alice.sub}", "events": ['{"action": "cancel", "conversationId": "c"}']})
    refused = client.post("/event", data=body, content_type="application/json")
    assert refused.status_code == 403
    client.get("/")  # the page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/event", data=body, content_type="application/json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 200
    assert len(accepted.json()["successful"]) == 1


@override_settings(CHAT_PUBLISH_BURST=2, CHAT_PUBLISH_PER_SECOND=0.001)
async def test_http_publish_flood_is_throttled(bob):
    client = await _client_for(bob)
    body = {"channel": f"/inbound/{bob.sub}", "events": ['{"action": "cancel", "conversationId": "c"}']}
    statuses = [(await _post(client, body)).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
