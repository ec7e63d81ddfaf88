"""Chat turns as the Channels door runs them: in a bounded worker pool, cancellable.

`start_turn` hands one published event to `dataplane.inbound.run_published_events` (the
entry the Lambda handler uses too) in a worker thread, so the event loop never waits for a
model. A turn is registered under `(sub, conversationId)` until it ends, so a cancel published
on either door (WebSocket or HTTP) finds it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from channels.layers import get_channel_layer
from django.conf import settings

from chat.outbound import TURN_CANCEL, ChannelsGroupOutbound
from chat.protocol import PublishedEvent
from dataplane.channels import outbound_group_name
from dataplane.inbound import run_published_events
from dataplane.pipeline import Identity
from dataplane.requests import cancel_target, conversation_id_of
from dataplane.telemetry.record import RequestRecord
from gateway_project.gateway import gateway

logger = logging.getLogger("chat.turns")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_background: set[asyncio.Future] = set()  # keeps fire-and-forget turns from being collected


def turn_executor() -> ThreadPoolExecutor:
    """The process-wide pool; its size (`GATEWAY_TURN_WORKERS`) bounds concurrent model calls."""
    global _executor  # noqa: PLW0603 - built once, on first use, under the lock
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.GATEWAY_TURN_WORKERS, thread_name_prefix="chat-turn")
        return _executor


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


def run_turn(
    *, sub: str, username: str, channel: str, event: PublishedEvent, cancel: threading.Event,
    loop: asyncio.AbstractEventLoop,
) -> list[RequestRecord]:
    """Runs in a worker thread: one published event, start to end."""
    outbound = ChannelsGroupOutbound(sub=sub, loop=loop)
    records = run_published_events(
        gateway=gateway(),
        identity=Identity(sub=sub, username=username),
        channel=channel,
        payloads=[event.payload],
        outbound=outbound,
        cancel=cancel,
        entry="channels",
    )
    # The worker (a bounded resource) stays busy until the answer has left, so a crowd of
    # turns cannot outrun the channel layer without limit.
    outbound.wait_until_sent()
    return records


def start_turn(*, sub: str, username: str, channel: str, event: PublishedEvent) -> threading.Event:
    """Schedule a turn on the worker pool from the running event loop; returns its cancel event."""
    cancel = threading.Event()
    conversation_id = conversation_id_of(event.payload) or ""
    running_turns.add(sub, conversation_id, cancel)
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        turn_executor(),
        functools.partial(run_turn, sub=sub, username=username, channel=channel, event=event, cancel=cancel, loop=loop),
    )
    task = asyncio.ensure_future(work)
    _background.add(task)

    def finished(done: asyncio.Future) -> None:
        _background.discard(done)
        running_turns.discard(sub, conversation_id, cancel)
        if not done.cancelled() and done.exception() is not None:
            logger.error("chat turn for %s crashed", sub, exc_info=done.exception())

    task.add_done_callback(finished)
    return cancel


async def cancel_conversation(*, sub: str, conversation_id: str) -> None:
    """Stop the user's running turns of this conversation, here and in other server processes."""
    running_turns.cancel(sub, conversation_id)
    await get_channel_layer().group_send(
        outbound_group_name(sub), {"type": TURN_CANCEL, "conversationId": conversation_id}
    )


async def publish_inbound(
    *, sub: str, username: str, channel: str, events: list[PublishedEvent]
) -> list[threading.Event]:
    """Act on accepted events published to `/inbound/<sub>`: cancels now, turns in the pool."""
    started: list[threading.Event] = []
    for event in events:
        conversation_id = cancel_target(event.payload)
        if conversation_id is not None:
            await cancel_conversation(sub=sub, conversation_id=conversation_id)
        else:
            started.append(start_turn(sub=sub, username=username, channel=channel, event=event))
    return started
