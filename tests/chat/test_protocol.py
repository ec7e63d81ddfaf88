"""The AppSync Events WebSocket protocol on `/event/realtime`, through the real ASGI app
(origin check, session auth, routing) and the real data-plane pipeline."""
from __future__ import annotations

import asyncio
import json

import pytest
from django.test import override_settings

from chat.turns import running_turns
from tests.chat.conftest import (
    DEMO_MODEL,
    ENDLESS_MODEL,
    WAIT,
    Session,
    chat_request,
    connected,
    publish_policy,
    streamed_text,
    turn_over,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_without_delay")]


async def test_anonymous_connection_is_closed_with_4401():
    session = Session(None)
    await session.open()
    closed = await session.ws.receive_output(timeout=WAIT)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_connection_init_is_acknowledged_with_the_appsync_subprotocol(alice_cookie):
    session = Session(alice_cookie)
    assert await session.open() == "aws-appsync-event-ws"
    assert await session.init() == {"type": "connection_ack", "connectionTimeoutMs": 300_000}
    await session.close()


@override_settings(CHAT_KEEPALIVE_SECONDS=0.01)
async def test_keepalives_follow_the_acknowledgement(alice_cookie):
    session = await connected(alice_cookie)
    assert await session.receive() == {"type": "ka"}
    assert await session.receive() == {"type": "ka"}
    await session.close()


async def test_subscribe_and_unsubscribe_own_outbound(alice, alice_cookie):
    session = await connected(alice_cookie)
    assert await session.subscribe(f"/outbound/{alice.sub}", "sub-1") == {"type": "subscribe_success", "id": "sub-1"}
    await session.send({"type": "unsubscribe", "id": "sub-1"})
    assert await session.receive() == {"type": "unsubscribe_success", "id": "sub-1"}
    await session.send({"type": "unsubscribe", "id": "sub-1"})
    refused = await session.receive()
    assert refused["type"] == "unsubscribe_error"
    assert refused["errors"][0]["errorType"] == "BadRequestException"
    await session.close()


@pytest.mark.parametrize(
    ("channel", "error_type"),
    [
        ("/outbound/{other}", "UnauthorizedException"),
        ("/inbound/{own}", "UnauthorizedException"),
        ("/outbound/*", "UnauthorizedException"),
        ("/outbound/{own}/more", "UnauthorizedException"),
        ("outbound/{own}", "BadRequestException"),
        ("/outbound/has space", "BadRequestException"),
        ("/a/b/c/d/e/f", "BadRequestException"),
        (42, "BadRequestException"),
    ],
)
async def test_subscribe_refuses_channels_that_are_not_the_users_outbound(
    alice, bob, alice_cookie, channel, error_type
):
    if isinstance(channel, str):
        channel = channel.format(own=alice.sub, other=bob.sub)
    session = await connected(alice_cookie)
    refused = await session.subscribe(channel, "s1")
    assert refused["type"] == "subscribe_error"
    assert refused["id"] == "s1"
    assert refused["errors"][0]["errorType"] == error_type
    assert refused["errors"][0]["message"]
    await session.close()


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, None, 7])
async def test_malformed_ids_are_refused(alice, alice_cookie, bad_id):
    session = await connected(alice_cookie)
    frame = {"type": "subscribe", "channel": f"/outbound/{alice.sub}"}
    if bad_id is not None:
        frame["id"] = bad_id
    await session.send(frame)
    refused = await session.receive()
    assert refused["type"] == "subscribe_error"
    assert refused["errors"][0]["errorType"] == "BadRequestException"
    await session.close()


async def test_ids_are_unique_per_connection(alice, alice_cookie):
    session = await connected(alice_cookie)
    assert (await session.subscribe(f"/outbound/{alice.sub}", "same"))["type"] == "subscribe_success"
    assert (await session.subscribe(f"/outbound/{alice.sub}", "same"))["type"] == "subscribe_error"
    refused = await session.publish(
        f"/inbound/{alice.sub}", {"action": "cancel", "conversationId": "c"}, frame_id="same"
    )
    assert refused["type"] == "publish_error"
    ok = await session.publish(f"/inbound/{alice.sub}", {"action": "cancel", "conversationId": "c"}, frame_id="p1")
    assert ok["type"] == "publish_success"
    again = await session.publish(f"/inbound/{alice.sub}", {"action": "cancel", "conversationId": "c"}, frame_id="p1")
    assert again["type"] == "publish_error"
    assert "already used" in again["errors"][0]["message"]
    await session.close()


async def test_a_published_chat_request_streams_back_as_data_frames(alice, alice_cookie):
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}", "answers")
    accepted = await session.publish(
        f"/inbound/{alice.sub}", chat_request("What is two plus two?", conversation="conv-1"), frame_id="p1"
    )
    assert accepted["type"] == "publish_success"
    assert accepted["id"] == "p1"
    assert accepted["failed"] == []
    assert [s["index"] for s in accepted["successful"]] == [0]
    events = await session.events_until(turn_over)
    assert "messageStart" in events[0]
    text = streamed_text(events)
    assert "What is two plus two?" in text
    assert any(e.get("messageStop", {}).get("stopReason") == "end_turn" for e in events)
    metadata = events[-1]["metadata"]
    assert metadata["usage"]["totalTokens"] > 0
    assert metadata["modelId"] == DEMO_MODEL.model_id
    assert metadata["tokenUsage"]["10m"]["used"] == metadata["usage"]["totalTokens"]
    assert metadata["tokenUsage"]["10m"]["limit"] == 100_000
    assert metadata["tokenUsage"]["month"]["resetsAt"]
    assert all(e["conversationId"] == "conv-1" for e in events)
    await session.close()


async def test_every_connection_of_the_user_receives_the_answer(alice, alice_cookie):
    first, second = await connected(alice_cookie), await connected(alice_cookie)
    await first.subscribe(f"/outbound/{alice.sub}", "a")
    await second.subscribe(f"/outbound/{alice.sub}", "b")
    await first.publish(f"/inbound/{alice.sub}", chat_request("Who hears this answer?"))
    heard_by_second = await second.events_until(turn_over)
    assert "metadata" in heard_by_second[-1]
    assert "Who hears this answer?" in streamed_text(heard_by_second)
    frame = await first.next_of("data")
    assert frame["id"] == "a"  # each connection's own subscription id
    heard_by_first = [json.loads(frame["event"]), *await first.events_until(turn_over)]
    assert heard_by_first == heard_by_second
    await first.close()
    await second.close()


async def test_users_never_receive_each_others_events(alice, bob, alice_cookie, bob_cookie):
    alice_ws, bob_ws = await connected(alice_cookie), await connected(bob_cookie)
    await alice_ws.subscribe(f"/outbound/{alice.sub}")
    await bob_ws.subscribe(f"/outbound/{bob.sub}")
    await alice_ws.publish(f"/inbound/{alice.sub}", chat_request("secret of alice"))
    await bob_ws.publish(f"/inbound/{bob.sub}", chat_request("question of bob"))
    alice_text = streamed_text(await alice_ws.events_until(turn_over))
    bob_text = streamed_text(await bob_ws.events_until(turn_over))
    assert "question of bob" in bob_text
    assert "secret of alice" not in bob_text
    assert "secret of alice" in alice_text
    assert "question of bob" not in alice_text
    assert await bob_ws.ws.receive_nothing(timeout=0.2)
    await alice_ws.close()
    await bob_ws.close()


async def test_publishing_to_another_users_inbound_is_refused(alice, bob, alice_cookie):
    session = await connected(alice_cookie)
    refused = await session.publish(f"/inbound/{bob.sub}", chat_request())
    assert refused["type"] == "publish_error"
    assert refused["errors"][0]["errorType"] == "UnauthorizedException"
    refused = await session.publish(f"/outbound/{alice.sub}", chat_request())
    assert refused["errors"][0]["errorType"] == "UnauthorizedException"
    await session.close()


async def test_more_than_five_events_are_refused(alice, alice_cookie):
    session = await connected(alice_cookie)
    refused = await session.publish(f"/inbound/{alice.sub}", *[{"action": "cancel", "conversationId": "c"}] * 6)
    assert refused["type"] == "publish_error"
    assert "At most 5" in refused["errors"][0]["message"]
    await session.close()


@pytest.mark.parametrize("events", [[], "not a list", None])
async def test_publish_needs_a_list_of_events(alice, alice_cookie, events):
    session = await connected(alice_cookie)
    await session.send({"type": "publish", "id": "p", "channel": f"/inbound/{alice.sub}", "events": events})
    refused = await session.receive()
    assert refused["type"] == "publish_error"
    assert refused["errors"][0]["errorType"] == "BadRequestException"
    await session.close()


async def test_oversize_and_non_json_events_fail_alone(alice, alice_cookie):
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    oversize = json.dumps({"pad": "x" * (240 * 1024)})
    answer = await session.publish(f"/inbound/{alice.sub}", oversize, "{not json", chat_request())
    assert answer["type"] == "publish_success"
    assert [f["index"] for f in answer["failed"]] == [0, 1]
    assert "limit is 245760" in answer["failed"][0]["message"]
    assert "not valid JSON" in answer["failed"][1]["message"]
    assert [s["index"] for s in answer["successful"]] == [2]
    assert "metadata" in (await session.events_until(turn_over))[-1]
    await session.close()


@pytest.mark.parametrize("frame", ["{not json", "[1, 2]", '{"no": "type"}', "x" * (2 * 1024 * 1024)])
async def test_non_protocol_frames_get_an_error_and_the_connection_stays_usable(alice, alice_cookie, frame):
    session = await connected(alice_cookie)
    await session.send(frame)
    error = await session.receive()
    assert error["type"] == "error"
    assert error["errors"][0]["errorType"] == "BadRequestException"
    assert (await session.subscribe(f"/outbound/{alice.sub}"))["type"] == "subscribe_success"
    await session.close()


async def test_binary_frames_and_unknown_types_get_an_error(alice, alice_cookie):
    session = await connected(alice_cookie)
    await session.ws.send_to(bytes_data=b"\x00\x01")
    assert (await session.receive())["type"] == "error"
    await session.send({"type": "start", "id": "x1"})
    error = await session.receive()
    assert error == {
        "type": "error",
        "id": "x1",
        "errors": [{"errorType": "UnsupportedOperation", "message": "Unknown message type 'start'."}],
    }
    assert (await session.init())["type"] == "connection_ack"
    await session.close()


@override_settings(CHAT_ABUSE_STRIKES=3)
async def test_repeated_abuse_closes_with_4429(alice_cookie):
    session = await connected(alice_cookie)
    for _ in range(3):
        await session.send("garbage")
        assert (await session.receive())["type"] == "error"
    assert await session.ws.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": 4429}


@override_settings(CHAT_PUBLISH_BURST=3, CHAT_PUBLISH_PER_SECOND=0.001)
async def test_a_publish_flood_is_throttled_while_others_are_served(alice, bob, alice_cookie, bob_cookie):
    flooder, other = await connected(alice_cookie), await connected(bob_cookie)
    cancel = {"action": "cancel", "conversationId": "nothing-running"}
    answers = [await flooder.publish(f"/inbound/{alice.sub}", cancel) for _ in range(12)]
    assert [a["type"] for a in answers[:3]] == ["publish_success"] * 3
    assert {a["type"] for a in answers[3:]} == {"publish_error"}
    assert answers[5]["errors"][0]["errorType"] == "ThrottlingException"
    await other.subscribe(f"/outbound/{bob.sub}")
    assert (await other.publish(f"/inbound/{bob.sub}", chat_request()))["type"] == "publish_success"
    assert "metadata" in (await other.events_until(turn_over))[-1]
    assert (await flooder.subscribe(f"/outbound/{alice.sub}"))["type"] == "subscribe_success"
    await flooder.close()
    await other.close()


async def test_model_not_allowed_and_quota_errors_arrive_as_data(alice, alice_cookie):
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    await session.publish(f"/inbound/{alice.sub}", chat_request(model="anthropic.claude-not-allowed"))
    error = (await session.events_until(turn_over))[-1]["error"]
    assert error["type"] == "ModelNotAllowed"
    publish_policy(alice, ten_minute=5)
    # private: the answer cache (which costs no quota) must not answer this one
    await session.publish(f"/inbound/{alice.sub}", chat_request(private=True))
    refused = (await session.events_until(turn_over))[-1]
    assert refused["error"]["type"] == "QuotaExceeded"
    assert refused["error"]["window"] == "10m"
    assert refused["error"]["resetsAt"]
    assert refused["tokenUsage"]["10m"]["limit"] == 5
    await session.close()


@pytest.mark.usefixtures("endless_provider")
async def test_cancel_stops_the_turn_and_bills_what_streamed(alice, alice_cookie):
    publish_policy(alice, models=(ENDLESS_MODEL,))
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    await session.publish(f"/inbound/{alice.sub}", chat_request(model=ENDLESS_MODEL.model_id, conversation="long-one"))
    await session.events_until(lambda e: "contentBlockDelta" in e)
    stop = await session.publish(f"/inbound/{alice.sub}", {"action": "cancel", "conversationId": "long-one"})
    assert stop["type"] == "publish_success"
    events = await session.events_until(turn_over)
    assert any(e.get("messageStop", {}).get("stopReason") == "cancelled" for e in events), events[-3:]
    billed = events[-1]["metadata"]["usage"]
    assert 0 < billed["outputTokens"] < 2000  # what streamed, not the whole answer
    assert events[-1]["metadata"]["tokenUsage"]["10m"]["used"] == billed["totalTokens"]
    await session.close()


async def test_disconnect_cancels_the_connections_running_turns(alice, alice_cookie, endless_provider):
    publish_policy(alice, models=(ENDLESS_MODEL,))
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")
    await session.publish(f"/inbound/{alice.sub}", chat_request(model=ENDLESS_MODEL.model_id))
    await session.events_until(lambda e: "contentBlockDelta" in e)
    assert running_turns.count(alice.sub) == 1
    await session.close()
    # The provider's stream is closed by the pipeline once it sees the cancel.
    assert await asyncio.to_thread(endless_provider.closed.wait, WAIT)
    for _ in range(WAIT * 100):  # let the turn settle and deregister before the loop closes
        if running_turns.count(alice.sub) == 0:
            break
        await asyncio.sleep(0.01)
    assert running_turns.count(alice.sub) == 0
