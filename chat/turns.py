"""Chat turns as the Channels door runs them: on the server's event loop, cancellable.

`start_turn` runs one published event with `dataplane.pipeline.chat_turn_async`: the model's
answer is read on the event loop (the demo and OpenAI-compatible providers stream
asynchronously), so a thousand turns in flight cost no thousand threads, and nothing caps how
many run at once. The short blocking steps (policy, stored answers, reserve, settle,
telemetry) run in a small pool (`GATEWAY_STORE_WORKERS`); a provider that only streams
synchronously (Bedrock through boto3, a guardrail-checked model) streams in the worker pool
(`GATEWAY_TURN_WORKERS`), which then bounds those turns only. A turn is registered under
`(sub, conversationId)` until it ends, so a cancel published on either door (WebSocket or
HTTP) finds it.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import defaultdict

from channels.layers import get_channel_layer

from chat.outbound import TURN_CANCEL, ChannelsGroupOutbound
from chat.protocol import PublishedEvent
from dataplane.pipeline import Identity, chat_turn_async
from dataplane.requests import cancel_target, conversation_id_of
from dataplane.stopping import TurnStop
from dataplane.telemetry.record import RequestRecord
from gateway_project.gateway import gateway
from gateway_project.turn_pools import keep_turn, store_executor, turn_executor

logger = logging.getLogger("chat.turns")



class RunningTurns:
    """Cancel events of the turns running in this process, by user and conversation."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], set[threading.Event]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, sub: str, conversation_id: str, cancel: threading.Event) -> None:
        with self._lock:
            self._events[(sub, conversation_id)].add(cancel)

    def discard(self, sub: str, conversation_id: str, cancel: threading.Event) -> None:
        with self._lock:
            events = self._events.get((sub, conversation_id))
            if events is not None:
                events.discard(cancel)
                if not events:
                    del self._events[(sub, conversation_id)]

    def cancel(self, sub: str, conversation_id: str) -> int:
        """Stop the user's turns of one conversation, or all of them when it is ""."""
        with self._lock:
            events = [
                event
                for (owner, conversation), running in self._events.items()
                if owner == sub and conversation_id in ("", conversation)
                for event in running
            ]
        for event in events:
            event.set()
        return len(events)

    def count(self, sub: str) -> int:
        with self._lock:
            return sum(len(events) for (owner, _), events in self._events.items() if owner == sub)


running_turns = RunningTurns()


async def run_turn(
    *, sub: str, username: str, channel: str, event: PublishedEvent, cancel: threading.Event
) -> RequestRecord:
    """One published event, start to end, on the running event loop."""
    try:
        await cancel_listener().join(sub)
    except Exception:  # noqa: BLE001 - without it only cancels from other processes are missed
        logger.warning("turn of %s cannot hear cancels from other processes", sub, exc_info=True)
    outbound = ChannelsGroupOutbound(sub=sub, loop=asyncio.get_running_loop())
    return await chat_turn_async(
        gateway=gateway(),
        identity=Identity(sub=sub, username=username),
        channel=channel,
        payload=event.payload,
        outbound=outbound,
        stop=TurnStop(cancel=cancel),
        store_calls=store_executor(),
        model_calls=turn_executor(),
        entry="channels",
    )


def start_turn(*, sub: str, username: str, channel: str, event: PublishedEvent) -> threading.Event:
    """Start a turn as a task on the running event loop; returns its cancel event."""
    cancel = threading.Event()
    conversation_id = conversation_id_of(event.payload) or ""
    running_turns.add(sub, conversation_id, cancel)
    task = asyncio.ensure_future(run_turn(sub=sub, username=username, channel=channel, event=event, cancel=cancel))
    keep_turn(task, cancel)

    def finished(done: asyncio.Future) -> None:
        running_turns.discard(sub, conversation_id, cancel)
        if not done.cancelled() and done.exception() is not None:
            logger.error("chat turn for %s crashed", sub, exc_info=done.exception())

    task.add_done_callback(finished)
    return cancel


def cancel_group_name(sub: str) -> str:
    """The group of the server processes that ran a turn of this user lately."""
    return f"turn-cancels.{sub}"


class CancelListener:
    """This process's ear for cancels published to another process.

    A turn runs in the process that took its publish, which need not hold a connection of
    the user subscribed to the outbound group (a POST /event, or a page connected elsewhere
    behind a load balancer). So each process joins `cancel_group_name(sub)` with one channel
    of its own when it starts a turn for `sub`, and one task sets the cancel events of the
    turns a message names. Joining is refreshed hourly, well within the layer's group expiry.
    """

    REJOIN_SECONDS = 3600.0

    def __init__(self) -> None:
        self.channel: str | None = None
        self.task: asyncio.Task | None = None
        self.joined: dict[str, float] = {}

    async def join(self, sub: str) -> None:
        layer = get_channel_layer()
        if self.task is None or self.task.done():
            # The layer's default prefix: channels_redis reads all of a process's channels
            # with one receiver, which works only for names it made with that prefix.
            self.channel = await layer.new_channel()
            self.task = asyncio.ensure_future(self._listen(layer, self.channel))
            self.joined.clear()
        now = time.monotonic()
        if now - self.joined.get(sub, -self.REJOIN_SECONDS) >= self.REJOIN_SECONDS:
            self.joined[sub] = now
            await layer.group_add(cancel_group_name(sub), self.channel)

    @staticmethod
    async def _listen(layer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a layer hiccup must not end the listening
                _stop_if_cancelled()
                logger.warning("cancel listener: receive failed", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            _stop_if_cancelled()
            if message.get("type") == TURN_CANCEL and isinstance(message.get("sub"), str):
                running_turns.cancel(message["sub"], str(message.get("conversationId", "")))


def _stop_if_cancelled() -> None:
    """Stop as asked when the layer swallowed this task's cancellation: channels_redis and
    redis-py, cancelled mid-read, can return or fail (ConnectionError) instead of raising it,
    and the loop would listen on for ever (a closing event loop waited on it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# Channels and tasks belong to one event loop: one listener per loop (tests run several).
_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CancelListener] = weakref.WeakKeyDictionary()


def cancel_listener() -> CancelListener:
    loop = asyncio.get_running_loop()
    if loop not in _listeners:
        _listeners[loop] = CancelListener()
    return _listeners[loop]


async def cancel_conversation(*, sub: str, conversation_id: str) -> None:
    """Stop the user's running turns of this conversation, here and in other server processes."""
    running_turns.cancel(sub, conversation_id)
    await get_channel_layer().group_send(
        cancel_group_name(sub), {"type": TURN_CANCEL, "sub": sub, "conversationId": conversation_id}
    )


async def publish_inbound(
    *, sub: str, username: str, channel: str, events: list[PublishedEvent]
) -> list[threading.Event]:
    """Act on accepted events published to `/inbound/<sub>`: cancels now, turns as tasks."""
    started: list[threading.Event] = []
    for event in events:
        conversation_id = cancel_target(event.payload)
        if conversation_id is not None:
            await cancel_conversation(sub=sub, conversation_id=conversation_id)
        else:
            started.append(start_turn(sub=sub, username=username, channel=channel, event=event))
    return started
