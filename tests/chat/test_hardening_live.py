"""Attacks that need the real server: daphne's own frame limits, the embedded default's
channel layer under a real socket, and the publish allowance shared by several processes.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from django.conf import settings

from chat.protocol import MAX_EVENT_BYTES, MAX_FRAME_BYTES
from tests.chat.conftest import WAIT, publish_policy, session_cookie
from tests.chat.live import LiveDaphne
from tests.chat.test_live_daphne import open_session, request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_server(alice, tmp_path):
    publish_policy(alice)
    cookie = session_cookie(alice)  # before the start: on SQLite the server gets a copy of the database
    # The embedded default exactly: no Redis, so the process-local channel layer.
    server = LiveDaphne(
        tmp_path, extra_env={"GATEWAY_DEMO_CHUNK_DELAY": "0.001", "REDIS_URL": "", "CHAT_PUBLISH_BURST": "100"}
    )
    yield server, cookie
    server.stop()


async def test_frames_up_to_the_protocols_limit_are_served_and_larger_ones_answered(alice, alice_server):
    """Attack: frames between 1 MiB and the protocol's limit were closed by daphne (1006)."""
    server, cookie = alice_server
    ws = await open_session(server, cookie)
    try:
        event = json.dumps({"action": "cancel", "conversationId": "c", "padding": "x" * (MAX_EVENT_BYTES - 100)})
        assert len(event) <= MAX_EVENT_BYTES
        large = {"type": "publish", "id": "large", "channel": f"/inbound/{alice.sub}", "events": [event] * 5}
        assert 1024 * 1024 < len(json.dumps(large)) <= MAX_FRAME_BYTES
        assert (await request(ws, large))["type"] == "publish_success"

        too_large = {"type": "publish", "id": "too-large", "channel": f"/inbound/{alice.sub}",
                     "events": ["y" * (MAX_FRAME_BYTES + 1000)]}
        await ws.send(json.dumps(too_large))
        answer = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert answer["type"] == "error"
        assert f"at most {MAX_FRAME_BYTES} bytes" in answer["errors"][0]["message"]
        assert (await request(ws, {"type": "subscribe", "id": "still-here", "channel": f"/outbound/{alice.sub}"}))[
            "type"
        ] == "subscribe_success"
    finally:
        await ws.close()


async def test_forty_turns_in_flight_all_finish_on_the_embedded_default(alice, alice_server):
    """Attack: with about 20 turns in flight, `make run` lost 15-21 % of the answers."""
    server, cookie = alice_server
    ws = await open_session(server, cookie)
    try:
        assert (await request(ws, {"type": "subscribe", "id": "s", "channel": f"/outbound/{alice.sub}"}))[
            "type"
        ] == "subscribe_success"
        conversations = {f"flight-{n}" for n in range(40)}
        for batch in range(8):
            events = [
                json.dumps({"modelId": "demo.echo-v1", "conversationId": f"flight-{batch * 5 + n}", "private": True,
                            "messages": [{"role": "user", "content": [{"text": "Explain quotas " * 15}]}]})
                for n in range(5)
            ]
            await ws.send(
                json.dumps({"type": "publish", "id": f"p{batch}", "channel": f"/inbound/{alice.sub}", "events": events})
            )
        finished: set[str] = set()
        while finished != conversations:
            frame = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert frame["type"] in ("data", "publish_success", "ka"), frame
            if frame["type"] == "data":
                event = json.loads(frame["event"])
                if "metadata" in event or "error" in event:
                    assert "metadata" in event, event
                    finished.add(event["conversationId"])
    finally:
        await ws.close()


@pytest.fixture
def two_processes(alice, tmp_path):
    publish_policy(alice)
    shared = {"CHAT_PUBLISH_BURST": "4", "CHAT_PUBLISH_PER_SECOND": "0.001", "CHAT_LIVE_CACHE_PREFIX": uuid.uuid4().hex}
    cookie = session_cookie(alice)
    servers = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        servers.append(LiveDaphne(tmp_path / name, extra_env=shared))
    yield servers, cookie
    for server in servers:
        server.stop()


@pytest.mark.skipif(not settings.REDIS_URL, reason="the shared allowance needs Redis (REDIS_URL)")
async def test_the_publish_allowance_is_shared_by_every_server_process(alice, two_processes):
    servers, cookie = two_processes
    sockets = [await open_session(server, cookie) for server in servers]
    try:
        cancel = json.dumps({"action": "cancel", "conversationId": "none"})
        answers = [
            await request(
                ws, {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{alice.sub}", "events": [cancel]}
            )
            for ws in sockets
            for _ in range(3)
        ]
        assert sum(a["type"] == "publish_success" for a in answers) == 4
    finally:
        for ws in sockets:
            await ws.close()
