"""The embedded default's channel layer: one process, and a full queue slows the sender down
instead of losing the message.

Channels' `InMemoryChannelLayer` drops a group message when a member's queue is full (its
capacity is 100). A user with about 20 turns in flight lost answers that way: chunks and the
final event vanished and the page never finished. Here the sender waits for room. The sender
is a turn's outbound flusher, which already holds its worker thread back (see
`chat.outbound`), so a slow browser slows its own turns and nothing else. Only a member whose
queue stays full for `send_timeout` seconds (a consumer that is stuck or gone) is dropped
from its groups, and the turn sees `ChannelFull` and ends as a client that went away.

It is also leaner than the stock layer, which scans every channel and group for expiry on
each send and receive and deep-copies each message: messages here are fresh dicts of
strings that nobody changes after sending, so members share one.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class ProcessLocalChannelLayer(InMemoryChannelLayer):
    def __init__(self, capacity: int = 1000, send_timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(capacity=capacity, **kwargs)
        self.send_timeout = send_timeout

    def _queue(self, channel: str) -> asyncio.Queue:
        return self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        queue = self._queue(channel)
        try:
            queue.put_nowait((0.0, message))
        except asyncio.QueueFull:
            pass  # full: wait for room below, up to send_timeout
        else:
            return
        try:
            await asyncio.wait_for(queue.put((0.0, message)), self.send_timeout)
        except TimeoutError:
            self._remove_from_groups(channel)
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            # An empty queue is forgotten, so channels of closed connections do not pile up.
            # A sender waits only on a full queue, which a get never leaves empty.
            if queue.empty() and self.channels.get(channel) is queue:
                del self.channels[channel]
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        for channel in list(self.groups.get(group, ())):
            # A member that was stuck has left the group (ChannelFull); the others still get it.
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)
