"""Two users chatting at once through a real daphne process, over real WebSockets.

With `REDIS_URL` set (CI), the server's channel layer is Redis; otherwise the in-memory layer
of the single daphne process.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.chat.conftest import WAIT, publish_policy, session_cookie
from tests.chat.live import LiveDaphne

websockets = pytest.importorskip("websockets", reason="the websockets client library is not installed")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.typing import Origin, Subprotocol  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)
TURNS_EACH = 3


@pytest.fixture
def two_users_server(alice, bob, tmp_path):
    publish_policy(alice)
    publish_policy(bob)
    cookies = {"alice": session_cookie(alice), "bob": session_cookie(bob)}
    server = LiveDaphne(tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.002"})
    yield server, cookies
    server.stop()


async def open_session(server: LiveDaphne, cookie: str):
    ws = await connect(
        server.ws_url, subprotocols=[Subprotocol("aws-appsync-event-ws"), Subprotocol("header-e30")],
        additional_headers={"Cookie": cookie}, origin=Origin(server.url), open_timeout=WAIT,
    )
    assert ws.subprotocol == "aws-appsync-event-ws"
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), WAIT))["type"] == "connection_ack"
    return ws


async def request(ws, frame: dict) -> dict:
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if answer.get("id") == frame["id"] and answer["type"] != "data":
            return answer


async def chat(ws, sub: str, secret: str) -> tuple[list[dict], set[str]]:
    """Publish TURNS_EACH questions carrying `secret`; collect every event until all finished."""
    conversations = {f"{secret}-{n}" for n in range(TURNS_EACH)}
    for conversation in sorted(conversations):
        payload = {"modelId": "demo.echo-v1", "conversationId": conversation, "private": True,
                   "messages": [{"role": "user", "content": [{"text": f"question {secret} {conversation}"}]}]}
        ack = await request(ws, {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{sub}",
                                 "events": [json.dumps(payload)]})
        assert ack["type"] == "publish_success", ack
    events: list[dict] = []
    finished: set[str] = set()
    while finished != conversations:
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if frame["type"] != "data":
            continue
        event = json.loads(frame["event"])
        events.append(event)
        if "metadata" in event or "error" in event:
            finished.add(event["conversationId"])
    return events, conversations


async def test_two_users_chat_at_once_and_never_see_each_other(alice, bob, two_users_server):
    server, cookies = two_users_server
    alice_ws, bob_ws = await open_session(server, cookies["alice"]), await open_session(server, cookies["bob"])
    try:
        refused = await request(bob_ws, {"type": "subscribe", "id": "spy", "channel": f"/outbound/{alice.sub}"})
        assert refused["type"] == "subscribe_error"
        assert refused["errors"][0]["errorType"] == "UnauthorizedException"
        for ws, user in ((alice_ws, alice), (bob_ws, bob)):
            ok = await request(ws, {"type": "subscribe", "id": "mine", "channel": f"/outbound/{user.sub}"})
            assert ok["type"] == "subscribe_success"

        (alice_events, alice_convs), (bob_events, bob_convs) = await asyncio.gather(
            chat(alice_ws, alice.sub, "ALICESECRET"), chat(bob_ws, bob.sub, "BOBSECRET")
        )
        assert {e["conversationId"] for e in alice_events} == alice_convs
        assert {e["conversationId"] for e in bob_events} == bob_convs
        alice_text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in alice_events if "contentBlockDelta" in e)
        bob_text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in bob_events if "contentBlockDelta" in e)
        assert "ALICESECRET" in alice_text
        assert "BOBSECRET" not in alice_text
        assert "BOBSECRET" in bob_text
        assert "ALICESECRET" not in bob_text
        assert sum("metadata" in e for e in alice_events) == TURNS_EACH == sum("metadata" in e for e in bob_events)
    except BaseException:
        print(server.log())  # noqa: T201 - pytest shows it with the failure
        raise
    finally:
        await alice_ws.close()
        await bob_ws.close()


async def test_the_real_server_closes_anonymous_connections_with_4401(two_users_server):
    server, _ = two_users_server
    ws = await connect(server.ws_url, subprotocols=["aws-appsync-event-ws"], origin=server.url, open_timeout=WAIT)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd.code == 4401
