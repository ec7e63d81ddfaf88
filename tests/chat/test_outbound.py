"""The Channels outbound sink: order kept, text deltas that piled up joined, nothing lost."""
from __future__ import annotations

import asyncio
import json

import pytest
from channels.layers import InMemoryChannelLayer

from chat import protocol
from chat.outbound import ChannelsGroupOutbound, coalesce, outbound_message


def delta(text: str, conversation: str = "c1") -> dict:
    return {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}, "conversationId": conversation}


def test_coalesce_joins_only_neighbouring_deltas_of_one_conversation():
    stop = {"messageStop": {"stopReason": "end_turn"}, "conversationId": "c1"}
    joined = coalesce([delta("a"), delta("b"), delta("x", "c2"), delta("c"), stop, delta("d")])
    assert joined == [delta("ab"), delta("x", "c2"), delta("c"), stop, delta("d")]


async def test_events_sent_from_a_worker_thread_arrive_in_order_and_complete():
    layer = InMemoryChannelLayer(capacity=10_000)
    channel = await layer.new_channel()
    await layer.group_add("outbound.s1", channel)
    sink = ChannelsGroupOutbound(sub="s1", loop=asyncio.get_running_loop(), channel_layer=layer)
    words = [f"w{n} " for n in range(500)]

    def turn() -> None:
        for word in words:
            sink.send(delta(word))
        sink.send({"metadata": {"usage": {}}, "conversationId": "c1"})
        assert sink.wait_until_sent(10)

    worker = asyncio.get_running_loop().run_in_executor(None, turn)
    received = []
    while not received or "metadata" not in received[-1]:
        message = await asyncio.wait_for(layer.receive(channel), 10)
        received.append(json.loads(json.loads(message["event"])))
    await worker
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in received if "contentBlockDelta" in e)
    assert text == "".join(words)
    assert len(received) <= len(words) + 1


async def receive_event(layer: InMemoryChannelLayer, channel: str) -> dict:
    message = await asyncio.wait_for(layer.receive(channel), 10)
    return json.loads(json.loads(message["event"]))


async def test_the_first_delta_leaves_at_once_and_later_ones_wait_for_the_window_or_the_end(settings):
    # A window far longer than the test's timeouts: a delta that waited for it would fail the
    # test, so what arrives proves what did not wait.
    settings.CHAT_FRAME_WINDOW_MS = 600_000
    layer = InMemoryChannelLayer(capacity=10_000)
    channel = await layer.new_channel()
    await layer.group_add("outbound.s1", channel)
    sink = ChannelsGroupOutbound(sub="s1", loop=asyncio.get_running_loop(), channel_layer=layer)
    loop = asyncio.get_running_loop()
    start = {"messageStart": {"role": "assistant"}, "conversationId": "c1"}
    stop = {"messageStop": {"stopReason": "end_turn"}, "conversationId": "c1"}

    await loop.run_in_executor(None, sink.send, start)
    assert await receive_event(layer, channel) == start
    await loop.run_in_executor(None, sink.send, delta("first "))
    assert await receive_event(layer, channel) == delta("first ")  # the first token never waits

    # Two hand-offs: the flusher that "b" starts runs (and waits) before the test goes on.
    await loop.run_in_executor(None, sink.send, delta("b"))
    await loop.run_in_executor(None, lambda: (sink.send(delta("c")), sink.send(stop)))
    # The later deltas waited and left as one frame; the end of the answer ended the wait.
    assert await receive_event(layer, channel) == delta("bc")
    assert await receive_event(layer, channel) == stop
    assert await loop.run_in_executor(None, sink.wait_until_sent, 10)


@pytest.mark.parametrize("text", ["plain", 'quotes " and \\ backslashes', "new\nline, tab\t, é, 😀, </script>"])
def test_a_data_frame_written_from_the_encoded_event_is_the_frame_json_would_make(text):
    event = {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}, "conversationId": "c1"}
    encoded = outbound_message("s1", event)["event"]
    frame = protocol.data_frame('sub-"1"', encoded)
    assert json.loads(frame) == protocol.data('sub-"1"', json.dumps(event))
    assert json.loads(json.loads(frame)["event"]) == event
