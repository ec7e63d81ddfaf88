"""Attacks on the chat door that once crashed it, lost answers or were not limited; each test
reproduces the attack in-process through the real ASGI app.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from chat.consumers import EventsConsumer
from chat.turns import running_turns
from gateway_project.settings.base import redis_or_local
from tests.chat.conftest import (
    ENDLESS_MODEL,
    WAIT,
    chat_request,
    connected,
    publish_policy,
    turn_over,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_without_delay")]

DEEP = "[" * 100_000


async def test_deeply_nested_json_is_an_error_frame_not_a_crash(alice, alice_cookie):
    session = await connected(alice_cookie)
    await session.send(DEEP)
    answer = await session.receive()
    assert answer["type"] == "error"
    assert answer["errors"][0]["message"] == "The frame is not valid JSON."
    # The same inside a published event: that event fails alone.
    await session.subscribe(f"/outbound/{alice.sub}")
    published = await session.publish(f"/inbound/{alice.sub}", DEEP, chat_request())
    assert published["type"] == "publish_success"
    assert [f["index"] for f in published["failed"]] == [0]
    assert len(published["successful"]) == 1
    assert "metadata" in (await session.events_until(turn_over))[-1]
    await session.close()


async def test_an_unexpected_failure_in_a_frame_answers_an_error_and_keeps_serving(alice, alice_cookie, monkeypatch):
    from chat import protocol

    def broken(text, binary):
        raise RuntimeError("internal detail that must not reach the client")

    session = await connected(alice_cookie)
    with monkeypatch.context() as patch:
        patch.setattr(protocol, "parse_frame", broken)
        await session.send({"type": "connection_init"})
        answer = await session.receive()
    assert answer["type"] == "error"
    assert "internal detail" not in json.dumps(answer)
    assert (await session.init())["type"] == "connection_ack"
    await session.close()


async def test_a_send_to_a_client_that_just_left_stops_its_turns(alice, alice_cookie, endless_provider, monkeypatch):
    """Attack: the socket closed between a chunk and the next; the send raised, the consumer
    died without `disconnect`, and the turn ran on, billed in full."""
    from autobahn.exception import Disconnected

    publish_policy(alice, models=(ENDLESS_MODEL,))
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    await session.publish(f"/inbound/{alice.sub}", chat_request(model=ENDLESS_MODEL.model_id))
    await session.events_until(lambda e: "contentBlockDelta" in e)

    async def closed_protocol(self, *args, **kwargs):
        raise Disconnected("Attempt to send on a closed protocol")

    monkeypatch.setattr(EventsConsumer, "send", closed_protocol)
    # The endless model would run for 10 s or more; the next send stops it at once.
    assert await asyncio.to_thread(endless_provider.closed.wait, WAIT / 2)
    monkeypatch.undo()
    await session.close()


def _layers() -> list:
    layers = [pytest.param({"default": {"BACKEND": "chat.layers.ProcessLocalChannelLayer"}}, id="process-local")]
    redis_layers, _ = redis_or_local(settings.REDIS_URL)
    if settings.REDIS_URL:
        layers.append(pytest.param(redis_layers, id="redis"))
    return layers


@pytest.mark.parametrize("channel_layers", _layers())
async def test_forty_turns_in_flight_on_one_connection_all_finish(alice, alice_cookie, channel_layers, monkeypatch):
    """Attack: 40 turns in flight; the stock in-memory layer dropped events past its capacity
    of 100 and 0 of 40 answers finished."""
    deliver = EventsConsumer.outbound_event

    async def over_a_slow_network(self, message):
        await asyncio.sleep(0.001)  # a socket write that takes a moment, as over a real network
        await deliver(self, message)

    monkeypatch.setattr(EventsConsumer, "outbound_event", over_a_slow_network)
    with override_settings(CHANNEL_LAYERS=channel_layers, CHAT_PUBLISH_BURST=100):
        session = await connected(alice_cookie)
        await session.subscribe(f"/outbound/{alice.sub}")
        conversations = [f"in-flight-{n}" for n in range(40)]
        requests = [chat_request("Tell me about tokens " * 20, conversation=c, private=True) for c in conversations]
        for start in range(0, 40, 5):
            events = [json.dumps(r) for r in requests[start : start + 5]]
            await session.send(
                {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{alice.sub}", "events": events}
            )
        texts: dict[str, str] = dict.fromkeys(conversations, "")
        finished: set[str] = set()
        acknowledged = 0
        while finished != set(conversations):
            frame = await session.receive()
            acknowledged += frame["type"] == "publish_success"
            if frame["type"] != "data":
                continue
            event = json.loads(frame["event"])
            if "contentBlockDelta" in event:
                texts[event["conversationId"]] += event["contentBlockDelta"]["delta"]["text"]
            if turn_over(event):
                assert "metadata" in event, event
                finished.add(event["conversationId"])
        assert acknowledged == 8
        assert len(set(texts.values())) == 1
        assert next(iter(texts.values()))
        await session.close()


@pytest.mark.usefixtures("endless_provider")
async def test_a_cancel_without_a_conversation_stops_every_running_turn(alice, alice_cookie):
    publish_policy(alice, models=(ENDLESS_MODEL,))
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    for conversation in ("first", "second"):
        await session.publish(
            f"/inbound/{alice.sub}", chat_request(model=ENDLESS_MODEL.model_id, conversation=conversation)
        )
    while running_turns.count(alice.sub) < 2:
        await session.next_of("data")
    await session.send({"type": "publish", "id": "stop-all", "channel": f"/inbound/{alice.sub}",
                        "events": [json.dumps({"action": "cancel"})]})
    stopped: dict[str, str] = {}
    while len(stopped) < 2:
        frame = await session.receive()
        assert frame["type"] in ("data", "publish_success"), frame
        event = json.loads(frame.get("event", "{}"))
        if "messageStop" in event:
            stopped[event["conversationId"]] = event["messageStop"]["stopReason"]
    assert stopped == {"first": "cancelled", "second": "cancelled"}
    await session.close()


@override_settings(CHAT_PUBLISH_BURST=5, CHAT_PUBLISH_PER_SECOND=0.001)
async def test_the_publish_allowance_is_per_user_across_connections_and_the_http_door(
    alice, bob, alice_cookie, bob_cookie
):
    """Attack: 40 connections gave one user 40 allowances (2,400 turns in 2.6 s)."""
    from django.test import AsyncClient

    cancel = {"action": "cancel", "conversationId": "nothing-running"}
    sessions = [await connected(alice_cookie) for _ in range(4)]
    answers = [await s.publish(f"/inbound/{alice.sub}", cancel) for s in sessions for _ in range(3)]
    assert sum(a["type"] == "publish_success" for a in answers) == 5
    assert {a["errors"][0]["errorType"] for a in answers if a["type"] == "publish_error"} == {"ThrottlingException"}

    client = AsyncClient()
    await client.aforce_login(alice)
    body = {"channel": f"/inbound/{alice.sub}", "events": [json.dumps(cancel)]}
    over_http = await client.post("/event", data=body, content_type="application/json")
    assert over_http.status_code == 429
    # Another user's allowance is their own.
    other = await connected(bob_cookie)
    assert (await other.publish(f"/inbound/{bob.sub}", cancel, frame_id=str(uuid.uuid4())))["type"] == "publish_success"
    for session in (*sessions, other):
        await session.close()


async def test_deeply_nested_http_body_is_a_400_not_a_500(alice):
    from django.test import AsyncClient

    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.post("/event", data=DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"errorType": "BadRequestException", "message": "The body is not valid JSON."}]
    }


@override_settings(CHAT_PUBLISH_BURST=5, CHAT_PUBLISH_PER_SECOND=0.001)
async def test_concurrent_publishes_are_each_counted(alice, alice_cookie):
    """Attack: publishes racing on many connections; a get-then-set count lost some of them
    (124 accepted against a burst of 10)."""
    cancel = json.dumps({"action": "cancel", "conversationId": "nothing-running"})
    sessions = [await connected(alice_cookie) for _ in range(8)]
    for session in sessions:
        for _ in range(4):
            await session.send(
                {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{alice.sub}", "events": [cancel]}
            )
    answers = [await session.receive() for session in sessions for _ in range(4)]
    assert sum(a["type"] == "publish_success" for a in answers) == 5
    for session in sessions:
        await session.close()
