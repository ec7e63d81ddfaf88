"""The outbound port as the Channels door implements it: a user's Channels group.

Every WebSocket connection of a user that subscribed to `/outbound/<sub>` is in the group
`outbound_group_name(sub)`; the consumer turns each group message into a `data` frame.

`send` runs in a turn's worker thread and never waits for the channel layer: events go into
the turn's buffer and one flusher task on the server's event loop sends them in order. Text
deltas that piled up while a send was in flight leave as one `contentBlockDelta` (the bench
showed one group message per model chunk is what limits throughput on Redis: each costs a
round trip on the event loop). A slow layer pushes back: past `MAX_BUFFERED` waiting events
the worker waits.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from dataplane.channels import outbound_group_name
from dataplane.outbound import ClientGone
from dataplane.pipeline import outbound_channel

logger = logging.getLogger("chat.outbound")

OUTBOUND_EVENT = "outbound.event"  # group message type; the consumer's `outbound_event` handles it
TURN_CANCEL = "turn.cancel"  # a cancel seen by one process reaches turns running in the others
MAX_BUFFERED = 256
SEND_TIMEOUT_SECONDS = 30.0


def outbound_message(sub: str, event: dict[str, Any]) -> dict[str, Any]:
    # AppSync delivers each event as the JSON string that was published; so do we.
    return {"type": OUTBOUND_EVENT, "channel": outbound_channel(sub), "event": json.dumps(event, default=str)}


def coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join runs of text deltas of the same block and conversation into one delta."""
    joined: list[dict[str, Any]] = []
    for event in events:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and set(event) == set(previous) == {"contentBlockDelta", "conversationId"}
            and event["conversationId"] == previous["conversationId"]
            and event["contentBlockDelta"].get("contentBlockIndex") == previous["contentBlockDelta"].get("contentBlockIndex")
        ):
            merged = dict(previous["contentBlockDelta"])
            merged["delta"] = {"text": previous["contentBlockDelta"]["delta"].get("text", "") + event["contentBlockDelta"]["delta"].get("text", "")}
            joined[-1] = {"contentBlockDelta": merged, "conversationId": event["conversationId"]}
        else:
            joined.append(event)
    return joined


class ChannelsGroupOutbound:
    """Sends a turn's Converse-shaped events to the user's outbound group, in order."""

    def __init__(self, *, sub: str, loop: asyncio.AbstractEventLoop, channel_layer: Any = None) -> None:
        self.sub = sub
        self.group = outbound_group_name(sub)
        self.loop = loop
        self.channel_layer = channel_layer or get_channel_layer()
        self._buffer: list[dict[str, Any]] = []
        self._flushing = False
        self._gone = False
        self._changed = threading.Condition()

    def send(self, event: dict[str, Any]) -> None:
        with self._changed:
            if self._gone:
                raise ClientGone("the outbound channel stopped taking events")
            if not self._changed.wait_for(lambda: len(self._buffer) < MAX_BUFFERED or self._gone, SEND_TIMEOUT_SECONDS):
                self._gone = True
            if self._gone:
                raise ClientGone("the outbound channel stopped taking events")
            self._buffer.append(event)
            if self._flushing:
                return
            self._flushing = True
        try:
            self.loop.call_soon_threadsafe(self._start_flush)
        except RuntimeError:  # the server's loop is closed: nobody can listen any more
            with self._changed:
                self._gone = True
            raise ClientGone("the server is shutting down") from None

    def wait_until_sent(self, timeout: float = SEND_TIMEOUT_SECONDS) -> bool:
        """For tests and shutdown: True once every buffered event has left."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._flushing or self._gone, timeout)

    def _start_flush(self) -> None:
        task = self.loop.create_task(self._flush())
        _flushers.add(task)
        task.add_done_callback(_flushers.discard)

    async def _flush(self) -> None:
        while True:
            with self._changed:
                batch, self._buffer = self._buffer, []
                if not batch:
                    self._flushing = False
                    self._changed.notify_all()
                    return
                self._changed.notify_all()
            try:
                for event in coalesce(batch):
                    await self.channel_layer.group_send(self.group, outbound_message(self.sub, event))
            except Exception as error:  # noqa: BLE001 - a broken layer ends this turn's stream
                if not isinstance(error, ChannelFull):
                    logger.warning("outbound send to %s failed: %s", self.group, error)
                with self._changed:
                    self._gone, self._flushing = True, False
                    self._buffer.clear()
                    self._changed.notify_all()
                return


_flushers: set[asyncio.Task] = set()  # keeps running flushers from being collected
