"""The outbound port as the Channels door implements it: a user's Channels group.

Every WebSocket connection of a user that subscribed to `/outbound/<sub>` is in the group
`outbound_group_name(sub)`; the consumer turns each group message into a `data` frame.

`send` runs in a turn's worker thread, or on the event loop for a turn streamed there, and
never waits for the channel layer: events go into the turn's buffer and one flusher task on
the server's event loop sends them in order. Text
deltas that piled up while a send was in flight leave as one `contentBlockDelta` (the bench
showed one group message per model chunk is what limits throughput on Redis: each costs a
round trip on the event loop). After the first text delta of a turn has left, further deltas
wait up to `CHAT_FRAME_WINDOW_MS` so that the chunks of that window leave as one frame: at a
model's real pace (a chunk every 20 ms or so) nothing piles up by itself, and each chunk would
otherwise cost a loop hop, a group message and a WebSocket frame. The first delta never waits,
and any other event (the end of the answer, an error) ends the wait at once. A slow layer
pushes back: past `MAX_BUFFERED` waiting events the worker waits (a turn on the loop awaits
`room()`).

With Redis, a turn whose subscribers are all in this process skips the layer
(`chat.local_delivery`). Each group message carries the event already encoded as the JSON string literal a `data` frame
holds, so the consumer writes the frame without serialising the event again.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

from chat.local_delivery import local_subscribers, members_all_here
from dataplane.channels import outbound_channel, outbound_group_name
from dataplane.outbound import ClientGoneError

logger = logging.getLogger("chat.outbound")

OUTBOUND_EVENT = "outbound.event"  # group message type; the consumer's `outbound_event` handles it
TURN_CANCEL = "turn.cancel"  # a cancel seen by one process reaches turns running in the others
MAX_BUFFERED = 256
SEND_TIMEOUT_SECONDS = 30.0


def outbound_message(sub: str, event: dict[str, Any]) -> dict[str, Any]:
    # AppSync delivers each event as the JSON string that was published; so do we. `event` is
    # that string already encoded as a JSON literal (quoted and escaped): the frame's field.
    return {
        "type": OUTBOUND_EVENT,
        "channel": outbound_channel(sub),
        "event": json.dumps(json.dumps(event, default=str)),
    }


def is_text_delta(event: dict[str, Any]) -> bool:
    return "contentBlockDelta" in event


def coalesce(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join runs of deltas of the same block and conversation into one delta: text to text,
    a tool call's input to its input."""
    joined: list[dict[str, Any]] = []
    for event in events:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and set(event) == set(previous) == {"contentBlockDelta", "conversationId"}
            and event["conversationId"] == previous["conversationId"]
            and event["contentBlockDelta"].get("contentBlockIndex")
            == previous["contentBlockDelta"].get("contentBlockIndex")
            and _delta_kind(event) == _delta_kind(previous) is not None
        ):
            merged = dict(previous["contentBlockDelta"])
            before, after = previous["contentBlockDelta"]["delta"], event["contentBlockDelta"]["delta"]
            if "text" in before:
                merged["delta"] = {"text": before["text"] + after["text"]}
            else:
                merged["delta"] = {"toolUse": {"input": before["toolUse"]["input"] + after["toolUse"]["input"]}}
            joined[-1] = {"contentBlockDelta": merged, "conversationId": event["conversationId"]}
        else:
            joined.append(event)
    return joined


def _delta_kind(event: dict[str, Any]) -> str | None:
    delta = event["contentBlockDelta"].get("delta") or {}
    if set(delta) == {"text"}:
        return "text"
    if set(delta) == {"toolUse"} and set(delta["toolUse"]) == {"input"}:
        return "toolUse"
    return None


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
        self._window = settings.CHAT_FRAME_WINDOW_MS / 1000
        self._first_delta_sent = False
        self._wake: asyncio.Event | None = None  # created on the loop by the flusher
        self._taken: asyncio.Event | None = None  # set by the flusher when it takes the buffer
        self._local_only: bool | None = None  # decided at the turn's first frame

    def send(self, event: dict[str, Any]) -> None:
        with self._changed:
            if self._gone:
                raise ClientGoneError("the outbound channel stopped taking events")
            # On the loop itself (a turn streamed by `chat_turn_async`) nothing may wait here:
            # that turn awaits `room()` after each chunk instead.
            if not self._on_loop() and not self._changed.wait_for(
                lambda: len(self._buffer) < MAX_BUFFERED or self._gone, SEND_TIMEOUT_SECONDS
            ):
                self._gone = True
            if self._gone:
                raise ClientGoneError("the outbound channel stopped taking events")
            self._buffer.append(event)
            if self._flushing:
                if self._wake is not None and not is_text_delta(event):
                    wake = self._wake
                else:
                    return
            else:
                self._flushing, wake = True, None
        try:
            # Either start a flusher, or end a running one's wait for more deltas: an event
            # other than a delta (the answer's end, an error) never waits for the window.
            self.loop.call_soon_threadsafe(wake.set if wake is not None else self._start_flush)
        except RuntimeError:  # the server's loop is closed: nobody can listen any more
            with self._changed:
                self._gone = True
            raise ClientGoneError("the server is shutting down") from None

    async def room(self) -> None:
        """For a turn streamed on the loop: wait while MAX_BUFFERED events are waiting (a slow
        layer or browser), as `send` waits in a worker thread. ClientGoneError when it stays full."""
        deadline = self.loop.time() + SEND_TIMEOUT_SECONDS
        while len(self._buffer) >= MAX_BUFFERED and not self._gone:
            if self._taken is None:
                self._taken = asyncio.Event()
            self._taken.clear()
            try:
                await asyncio.wait_for(self._taken.wait(), max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                with self._changed:
                    self._gone = True
        if self._gone:
            raise ClientGoneError("the outbound channel stopped taking events")

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

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
            await self._gather_deltas()
            with self._changed:
                batch, self._buffer = self._buffer, []
                self._changed.notify_all()
                if self._taken is not None:
                    self._taken.set()
                if not batch:
                    self._flushing = False
                    return
            try:
                if self._local_only is None:
                    self._local_only = await members_all_here(self.channel_layer, self.group)
                for event in coalesce(batch):
                    await self._deliver(outbound_message(self.sub, event))
                    self._first_delta_sent = self._first_delta_sent or is_text_delta(event)
            except Exception as error:  # noqa: BLE001 - a broken layer ends this turn's stream
                if not isinstance(error, ChannelFull):
                    logger.warning("outbound send to %s failed: %s", self.group, error)
                with self._changed:
                    self._gone, self._flushing = True, False
                    self._buffer.clear()
                    self._changed.notify_all()
                if self._taken is not None:
                    self._taken.set()
                return


    async def _deliver(self, message: dict[str, Any]) -> None:
        if self._local_only:
            # Every subscriber is here (chat.local_delivery): straight to them, in order.
            for consumer in local_subscribers(self.sub):
                await consumer.outbound_event(message)
        else:
            await self.channel_layer.group_send(self.group, message)

    async def _gather_deltas(self) -> None:
        """Once the first delta has left, let more deltas join the ones waiting, for at most
        the window, unless something other than a delta is waiting (then nothing waits)."""
        if not self._window or not self._first_delta_sent:
            return
        if self._wake is None:
            self._wake = asyncio.Event()
        # Cleared before the buffer is looked at: a `set` for an event that arrives after
        # the look still ends the wait.
        self._wake.clear()
        with self._changed:
            only_deltas = bool(self._buffer) and all(is_text_delta(event) for event in self._buffer)
        if only_deltas:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._window)


_flushers: set[asyncio.Task] = set()  # keeps running flushers from being collected
