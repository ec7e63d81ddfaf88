"""The sink between a running turn and its HTTP response: events in order from the loop and
from pool threads, a slow reader slowing the turn, and a client that left stopping it."""
from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

import api.door
from api.door import MAX_WAITING, ResponseOutbound
from api.services import api_key_create
from dataplane.outbound import ClientGoneError
from dataplane.pipeline import current_charges
from dataplane.policy import AllowedModel
from gateway_project import turn_pools
from gateway_project.gateway import gateway, gateway_store
from tests.chat.conftest import publish_policy

SETTLE = 0.05  # long enough for a task that could proceed to have proceeded


async def test_events_from_the_loop_and_from_threads_arrive_in_order_until_the_end():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    outbound.send({"n": 1})
    await asyncio.to_thread(outbound.send, {"n": 2})
    outbound.send({"n": 3})
    await asyncio.to_thread(outbound.end)
    assert [event async for event in outbound.events()] == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_a_slow_reader_holds_back_the_part_streamed_on_the_loop():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    for n in range(MAX_WAITING):
        outbound.send({"n": n})  # on the loop `send` never waits: the turn awaits `room()`
    streaming = asyncio.ensure_future(outbound.room())
    await asyncio.sleep(SETTLE)
    assert not streaming.done()

    events = outbound.events()
    assert await anext(events) == {"n": 0}
    await asyncio.wait_for(streaming, 1)


async def test_a_slow_reader_holds_back_a_store_step_in_its_thread():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    for n in range(MAX_WAITING):
        outbound.send({"n": n})
    storing = asyncio.ensure_future(asyncio.to_thread(outbound.send, {"n": "from a store step"}))
    await asyncio.sleep(SETTLE)
    assert not storing.done()

    events = outbound.events()
    assert await anext(events) == {"n": 0}
    await asyncio.wait_for(storing, 1)
    outbound.end()
    rest = [event async for event in events]
    assert rest == [{"n": n} for n in range(1, MAX_WAITING)] + [{"n": "from a store step"}]


async def test_a_client_that_left_stops_the_turn_at_its_next_send_or_wait():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    for n in range(MAX_WAITING):
        outbound.send({"n": n})
    streaming = asyncio.ensure_future(outbound.room())
    storing = asyncio.ensure_future(asyncio.to_thread(outbound.send, {"n": "late"}))
    await asyncio.sleep(SETTLE)
    outbound.leave()
    with pytest.raises(ClientGoneError):
        await asyncio.wait_for(streaming, 1)
    with pytest.raises(ClientGoneError):
        await asyncio.wait_for(storing, 1)
    with pytest.raises(ClientGoneError):
        outbound.send({"n": "after"})


async def test_a_client_that_takes_nothing_for_too_long_counts_as_gone(monkeypatch):
    monkeypatch.setattr(api.door, "CLIENT_STALL_SECONDS", 0.1)
    outbound = ResponseOutbound(asyncio.get_running_loop())
    for n in range(MAX_WAITING):
        outbound.send({"n": n})
    with pytest.raises(ClientGoneError):
        await asyncio.wait_for(outbound.room(), 2)
    with pytest.raises(ClientGoneError):
        await asyncio.to_thread(outbound.send, {"n": "after"})


@pytest.mark.django_db(transaction=True)
async def test_a_client_that_leaves_before_the_whole_answer_stops_the_turn_which_settles(alice, openai_server):
    """A non-streamed request whose client gives up: Django cancels the view, and the turn
    stops reading the model and bills what it read, instead of reading the answer to its end."""
    model = AllowedModel(model_id="door-leaves", display_name="Slow", provider="openai", endpoint=openai_server.url)
    openai_server.script(model.model_id, chunks=["word "] * 400, usage=(10, 400), chunk_delay=0.01)
    await sync_to_async(publish_policy)(alice, models=(model,))
    issued = await sync_to_async(api_key_create)(user=alice, name="impatient")
    body = {"model": model.model_id, "messages": [{"role": "user", "content": "Talk"}], "max_completion_tokens": 1000}
    request = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]

    async def receive() -> dict:
        if request:
            return request.pop()
        await asyncio.sleep(0.5)  # the client waits half a second of a four-second answer
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        pass

    await asyncio.wait_for(ASGIHandler()(_post("/v1/chat/completions", issued.secret), receive, send), 10)
    running = set(turn_pools.running_turns())
    if running:
        await asyncio.wait(running, timeout=10)

    upstream = next(r for r in reversed(openai_server.requests) if r.model == model.model_id)
    assert await asyncio.to_thread(upstream.finished.wait, 10)
    assert upstream.chunks_sent < 400  # the model was not read to its end
    ten_minutes, month = await asyncio.to_thread(_windows, alice.sub)
    assert (ten_minutes.reserved, month.reserved) == (0, 0)
    assert 0 < month.total < 10 + 400  # what was read, billed


def _post(path: str, secret: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {secret}".encode())],
        "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }


def _windows(sub: str) -> list:
    gateway().policies.forget()
    policy = gateway().policies.get(sub)
    assert policy is not None
    return gateway_store().usage_read(sub=sub, charges=current_charges(gateway(), policy))
