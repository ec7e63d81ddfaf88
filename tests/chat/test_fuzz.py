"""A bounded fuzz of both chat doors: thousands of generated hostile frames and bodies.

Nesting, sizes around every limit, wrong types, odd unicode, unknown types, other users'
channels. Whatever arrives, the connection must not crash, no reply may be a 500 or carry
internal detail, the server must still chat normally afterwards, and memory must stay
bounded. The generator is seeded, so a failure reproduces.
"""
from __future__ import annotations

import json
import random
import re
import string
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings

from chat.consumers import UNHANDLED_FRAME
from chat.protocol import MAX_EVENT_BYTES, MAX_FRAME_BYTES
from chat.turns import running_turns
from tests.chat.conftest import DEMO_MODEL, Session, chat_request, connected, turn_over

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("demo_without_delay")]

SEED = 20261201
WEBSOCKET_FRAMES = 3000
HTTP_BODIES = 1000
CHURNED_CONNECTIONS = 100
REPLY_TYPES = {
    "connection_ack", "ka", "error", "subscribe_success", "subscribe_error", "unsubscribe_success",
    "unsubscribe_error", "publish_success", "publish_error", "data",
}
# What a traceback, a driver or an internal exception would leak into a reply.
INTERNAL_DETAIL = re.compile(
    r'Traceback|File "|\.py\b|psycopg|sqlite3|OperationalError|RecursionError|KeyError|TypeError|'
    r"AttributeError|UnicodeEncodeError|ValueError|NoneType|object at 0x"
)
ODD_TEXT = ["", " ", "\x00", "\u202e", "\ufeff", "💥" * 50, "한국어 질문", "\ud800", "\udfff", "a\u0301" * 40, "\n\r\t"]


def _odd_value(rng: random.Random, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind of value
    choice = rng.randrange(10)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**63, 1.5, float("inf"), float("nan")])
    if choice == 3:
        return rng.choice(ODD_TEXT)
    if choice == 4:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 40)))
    if choice == 5 and depth < 3:
        return [_odd_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 6 and depth < 3:
        return {
            rng.choice(["a", "type", "id", "text", "role"]): _odd_value(rng, depth + 1) for _ in range(rng.randrange(4))
        }
    return "x" * rng.choice([0, 1, 127, 128, 129, 4096])


def _nested(rng: random.Random) -> str:
    depth = rng.choice([10, 500, 5_000, 100_000])
    if rng.random() < 0.5:
        return "[" * depth  # unterminated, as the attack sent it
    return '{"a":' * depth + "1" + "}" * depth


def _hostile_chat_request(rng: random.Random) -> dict[str, Any]:
    request = chat_request(rng.choice(ODD_TEXT[1:]) or "hi", private=True)
    field = rng.choice(
        ["modelId", "conversationId", "messages", "system", "inferenceConfig", "private", "extra", "action"]
    )
    request[field] = _odd_value(rng)
    return request


def _channel(rng: random.Random, sub: str, other: str) -> Any:
    return rng.choice([
        f"/inbound/{sub}", f"/outbound/{sub}", f"/inbound/{other}", f"/outbound/{other}", "/outbound", "/outbound/",
        f"/outbound/{sub}/deeper", f"/outbound/{sub}/*", "/outbound/*", "/../etc", f"/inbound/{sub}\x00", None, 5, [],
        "/" + "a" * 5000, f"/outbound/{sub.upper()}", "/inbound/한국",
    ])


def hostile_frames(  # noqa: C901, PLR0912 - one branch per kind of frame, drawn from one seeded stream
    rng: random.Random, sub: str, other: str
) -> Iterator[str | bytes]:
    """An endless, seeded stream of frames a hostile or broken client might send."""
    while True:
        kind = rng.randrange(12)
        frame_id = rng.choice([str(uuid.uuid4()), str(uuid.uuid4()), "", "x" * 129, "bad id", 7, None, "dup"])
        if kind == 0:
            yield _nested(rng)
        elif kind == 1:
            yield "".join(rng.choice(ODD_TEXT + list(string.punctuation)) for _ in range(rng.randrange(1, 30)))
        elif kind == 2:
            yield json.dumps({"type": _odd_value(rng), "id": frame_id})
        elif kind == 3:
            yield json.dumps(
                {"type": rng.choice(["start", "stop", "connection_terminate", "PUBLISH", "ka", "data"]), "id": frame_id}
            )
        elif kind == 4:
            yield json.dumps({"type": "subscribe", "id": frame_id, "channel": _channel(rng, sub, other)})
        elif kind == 5:
            yield json.dumps({"type": "unsubscribe", "id": frame_id})
        elif kind == 6:
            events: Any = rng.choice(
                [None, [], {}, "x", [1, 2], [None], ["{"] * 6, [_nested(rng)], ['"just a string"'], ["[]"]]
            )
            yield json.dumps(
                {"type": "publish", "id": frame_id, "channel": _channel(rng, sub, other), "events": events}
            )
        elif kind == 7:
            # Mostly to the caller's own inbound channel, so the hostile request reaches the pipeline.
            channel = f"/inbound/{sub}" if rng.random() < 0.8 else _channel(rng, sub, other)
            events = [json.dumps(_hostile_chat_request(rng)) for _ in range(rng.randrange(1, 6))]
            yield json.dumps({"type": "publish", "id": str(uuid.uuid4()), "channel": channel, "events": events})
        elif kind == 8 and rng.random() < 0.05:  # sizes around the limits, rarely: they are large
            size = rng.choice([MAX_EVENT_BYTES - 2, MAX_EVENT_BYTES - 1, MAX_EVENT_BYTES + 1])
            event = json.dumps("e" * (size - 2))
            yield json.dumps(
                {"type": "publish", "id": str(uuid.uuid4()), "channel": f"/inbound/{sub}", "events": [event]}
            )
        elif kind == 9 and rng.random() < 0.02:
            yield "f" * rng.choice([MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1])
        elif kind == 10:
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        else:
            yield json.dumps({"type": "connection_init", "payload": _odd_value(rng)})


def assert_clean(reply: dict[str, Any]) -> None:
    assert isinstance(reply, dict), reply
    assert reply.get("type") in REPLY_TYPES, reply
    text = json.dumps(reply)
    assert not INTERNAL_DETAIL.search(text), text[:500]
    assert UNHANDLED_FRAME not in text, "a frame reached the consumer's last-resort handler: a bug to fix"
    if reply["type"] == "data":
        assert not INTERNAL_DETAIL.search(reply["event"]), reply["event"][:500]
        # Bad input is a ValidationError; an InternalError means the pipeline tripped over it.
        assert '"InternalError"' not in reply["event"], reply["event"][:500]


async def _answer(session: Session) -> list[dict[str, Any]]:
    """Frames up to the one answering the last frame sent (data frames may come first)."""
    frames = []
    while True:
        frame = await session.receive()
        assert_clean(frame)
        frames.append(frame)
        if frame["type"] not in ("data", "ka"):
            return frames


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@override_settings(CHAT_ABUSE_STRIKES=10**9, CHAT_PUBLISH_BURST=10**9, CHAT_PUBLISH_PER_SECOND=10**6)
async def test_websocket_fuzz_never_crashes_never_leaks_and_keeps_chatting(alice, bob, alice_cookie):
    rng = random.Random(SEED)
    frames = hostile_frames(rng, alice.sub, bob.sub)
    session = await connected(alice_cookie)
    await session.subscribe(f"/outbound/{alice.sub}")  # so turns' outcomes come back and get checked too

    async def send_some(count: int) -> None:
        for _ in range(count):
            frame = next(frames)
            if isinstance(frame, bytes):
                await session.ws.send_to(bytes_data=frame)
            else:
                await session.ws.send_to(text_data=frame)
            await _answer(session)

    await send_some(300)  # warm up: imports, caches, the worker pool
    before = _rss_bytes()
    await send_some(WEBSOCKET_FRAMES - 300)
    # The server still chats normally.
    conversation = "after-the-fuzz"
    request = json.dumps(chat_request("Still there?", conversation=conversation))
    await session.send(
        {"type": "publish", "id": "still-there", "channel": f"/inbound/{alice.sub}", "events": [request]}
    )
    while True:
        frame = await session.receive()
        assert_clean(frame)
        assert frame["type"] != "publish_error", frame
        event = json.loads(frame.get("event", "{}"))
        if event.get("conversationId") == conversation and turn_over(event):
            break
    assert "metadata" in event
    assert event["metadata"]["modelId"] == DEMO_MODEL.model_id
    await session.close()

    # Connections that each send a hostile frame and go: none may leave a turn or a task behind.
    for _ in range(CHURNED_CONNECTIONS):
        churned = await connected(alice_cookie)
        await churned.ws.send_to(text_data=_nested(rng))
        assert_clean(await churned.receive())
        await churned.close()
    assert running_turns.count(alice.sub) == 0
    grown = _rss_bytes() - before
    assert grown < 64 * 1024 * 1024, f"the process grew {grown / 2**20:.1f} MiB"


@override_settings(CHAT_PUBLISH_BURST=10**9, CHAT_PUBLISH_PER_SECOND=10**6)
async def test_http_publish_fuzz_never_answers_500_or_internal_detail(alice, bob):
    rng = random.Random(SEED + 1)
    frames = hostile_frames(rng, alice.sub, bob.sub)
    client = AsyncClient()
    await client.aforce_login(alice)
    statuses: dict[int, int] = {}
    for _ in range(HTTP_BODIES):
        frame = next(frames)
        body: Any = frame
        if isinstance(frame, str) and frame.startswith("{") and rng.random() < 0.5:
            try:
                body = json.loads(frame)  # a publish body is the frame without `type`/`id`
                if isinstance(body, dict):
                    body.pop("type", None)
                    body = json.dumps(body)
            except (ValueError, RecursionError):
                body = frame
        if isinstance(body, str):  # lone surrogates become the invalid UTF-8 a hostile client sends
            body = body.encode("utf-8", "surrogatepass")
        content_type = rng.choice(["application/json"] * 4 + ["text/plain", "application/x-www-form-urlencoded", ""])
        response = await client.post("/event", data=body, content_type=content_type)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 403, 429), (response.status_code, str(body)[:200])
        assert not INTERNAL_DETAIL.search(response.content.decode("utf-8", "replace")), response.content[:500]
    assert statuses.get(400, 0) > HTTP_BODIES / 4, statuses
    assert statuses.get(200, 0) > 0, statuses
    # Still serving.
    body = {"channel": f"/inbound/{alice.sub}", "events": [json.dumps(chat_request("Still there?"))]}
    response = await client.post("/event", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200
    assert len(response.json()["successful"]) == 1
    # The views' database connections live in asgiref's sync thread; close them there so the
    # test database can be dropped at the end of the run.
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()
