"""The sink between a running turn and its HTTP response: events in order from the loop and
from pool threads, a slow reader slowing the turn, and a client that left stopping it."""
from __future__ import annotations

import asyncio

import pytest

import api.door
from api.door import MAX_WAITING, ResponseOutbound
from dataplane.outbound import ClientGoneError

SETTLE = 0.05  # long enough for a task that could proceed to have proceeded


async def test_events_from_the_loop_and_from_threads_arrive_in_order_until_the_end():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    outbound.send({"n": 1})
    await asyncio.to_thread(outbound.send, {"n": 2})
    outbound.send({"n": 3})
    await asyncio.to_thread(outbound.end)
    assert [event async for event in outbound.events()] == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_a_slow_reader_holds_the_turn_back_on_the_loop_and_in_threads():
    outbound = ResponseOutbound(asyncio.get_running_loop())
    for n in range(MAX_WAITING):
        outbound.send({"n": n})  # on the loop `send` never waits
    streaming = asyncio.ensure_future(outbound.room())
    storing = asyncio.ensure_future(asyncio.to_thread(outbound.send, {"n": "from a store step"}))
    await asyncio.sleep(SETTLE)
    assert not streaming.done()
    assert not storing.done()

    events = outbound.events()
    assert await anext(events) == {"n": 0}
    await asyncio.wait_for(streaming, 1)
    await asyncio.wait_for(storing, 1)
    outbound.end()
    rest = [event async for event in events]
    assert rest[-1] == {"n": "from a store step"}
    assert len(rest) == MAX_WAITING


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
