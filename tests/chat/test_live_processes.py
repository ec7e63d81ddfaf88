"""The production layout: several daphne processes on one Redis channel layer.

Two real daphne processes on 127.0.0.1 share Redis (channel layer and cache), the database and
the data-plane store. A user connected to one process receives a turn published through the
other, and a cancel sent to the first stops the turn running in the second.
"""
from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from tests.chat.conftest import WAIT, publish_policy, session_cookie
from tests.chat.live import LiveDaphne
from tests.chat.test_live_daphne import open_session, request

websockets = pytest.importorskip("websockets", reason="the websockets client library is not installed")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="several processes need the Redis channel layer"),
]


@pytest.fixture
def two_processes(alice, tmp_path):
    publish_policy(alice)
    cookie = session_cookie(alice)
    # Paced so that a turn is still running when the cancel arrives (about 40 chunks).
    env = {"GATEWAY_DEMO_CHUNK_DELAY": "0.1", "CHAT_LIVE_CACHE_PREFIX": f"procs-{uuid.uuid4().hex[:8]}"}
    servers = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        servers.append(LiveDaphne(tmp_path / name, extra_env=env))
    yield *servers, cookie
    for server in servers:
        server.stop()


def chat_publish(sub: str, conversation: str, text: str) -> dict:
    payload = {"modelId": "demo.echo-v1", "conversationId": conversation, "private": True,
               "messages": [{"role": "user", "content": [{"text": text}]}]}
    return {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{sub}", "events": [json.dumps(payload)]}


async def events_of(ws, conversation: str, *, until) -> list[dict]:
    events = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if frame["type"] != "data":
            continue
        event = json.loads(frame["event"])
        if event.get("conversationId") != conversation:
            continue
        events.append(event)
        if until(event):
            return events


async def test_a_turn_run_by_one_process_reaches_the_user_on_the_other_and_is_cancelled_there(alice, two_processes):
    first, second, cookie = two_processes
    listening, publishing = await open_session(first, cookie), await open_session(second, cookie)
    try:
        subscribed = await request(listening, {"type": "subscribe", "id": "mine", "channel": f"/outbound/{alice.sub}"})
        assert subscribed["type"] == "subscribe_success"

        # A whole answer, run by the second process, arrives at the connection on the first.
        ack = await request(publishing, chat_publish(alice.sub, "whole", "ACROSS processes"))
        assert ack["type"] == "publish_success"
        whole = await events_of(listening, "whole", until=lambda event: "metadata" in event or "error" in event)
        text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in whole if "contentBlockDelta" in e)
        assert "ACROSS processes" in text
        assert whole[-1]["metadata"]["usage"]["outputTokens"] > 0
        full_output = whole[-1]["metadata"]["usage"]["outputTokens"]

        # A cancel sent to the first process stops the turn streaming in the second.
        ack = await request(publishing, chat_publish(alice.sub, "stopped", "Stop me"))
        assert ack["type"] == "publish_success"
        await events_of(listening, "stopped", until=lambda event: "contentBlockDelta" in event)
        cancel = {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{alice.sub}",
                  "events": [json.dumps({"action": "cancel", "conversationId": "stopped"})]}
        assert (await request(listening, cancel))["type"] == "publish_success"
        rest = await events_of(listening, "stopped", until=lambda event: "metadata" in event or "error" in event)
        assert {"messageStop": {"stopReason": "cancelled"}, "conversationId": "stopped"} in rest, rest[-3:]
        # Billed as streamed: less than the whole answer, more than nothing.
        assert 0 < rest[-1]["metadata"]["usage"]["outputTokens"] < full_output
    except BaseException:
        print(first.log(), second.log())  # noqa: T201 - the servers' logs explain a failure
        raise
    finally:
        await listening.close()
        await publishing.close()
