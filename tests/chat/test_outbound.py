"""The Channels outbound sink: order kept, text deltas that piled up joined, nothing lost."""
from __future__ import annotations

import asyncio
import json

from channels.layers import InMemoryChannelLayer

from chat.outbound import ChannelsGroupOutbound, coalesce


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
        received.append(json.loads(message["event"]))
    await worker
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in received if "contentBlockDelta" in e)
    assert text == "".join(words)
    assert len(received) <= len(words) + 1
