"""Running one OpenAI-style request through the data plane's chat turn, on the request's loop.

The turn is `dataplane.pipeline.chat_turn_async`, run as a task on the server's event loop as
the Channels door runs its turns: an async-capable model (the demo, an OpenAI-compatible
server) is read on the loop, so a thousand requests in flight cost no thousand threads and
`GATEWAY_TURN_WORKERS` does not cap them. The short blocking steps share the process's store
pool (`gateway_project.turn_pools`).

The turn's events wait in `ResponseOutbound` for the HTTP response to take them. Streamed
text arrives on the loop, store steps (a refusal, the answer's start and end) from pool
threads; past `MAX_WAITING` untaken events the turn waits for the client (`room()` on the
loop, `send` in a thread), so a slow reader slows its own turn instead of filling memory.
When the client goes away the view calls `stop()`: the turn stops reading from the model and
settles what was streamed, as it does for every other door; the task is kept until then.
The door's own database steps (the key's lookup, and one write of its use when the turn
ends) use the store pool too (`database_step`).
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from django.db import close_old_connections

from api.selectors import KeyHolder
from api.services import api_key_used
from dataplane.channels import inbound_channel
from dataplane.outbound import ClientGoneError
from dataplane.pipeline import Identity, chat_turn_async
from dataplane.stopping import TurnStop
from dataplane.telemetry.record import RequestRecord
from gateway_project.gateway import gateway
from gateway_project.turn_pools import keep_turn, store_executor, turn_executor

logger = logging.getLogger("api.door")

ENTRY = "openai"  # the door's name in telemetry and the lake
MAX_WAITING = 256  # events the response has not taken yet before the turn waits for it
CLIENT_STALL_SECONDS = 30.0  # a client that takes nothing for this long is treated as gone

_T = TypeVar("_T")


class ResponseOutbound:
    """A turn's outbound sink: its events, in order, until the HTTP response takes them.

    `send` never waits on the loop (the turn awaits `room()` after each streamed chunk
    instead); in a pool thread it waits while `MAX_WAITING` events are untaken.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiting: deque[dict[str, Any]] = deque()
        self._changed = threading.Condition()
        self._gone = False
        self._ended = False
        self._arrived = asyncio.Event()  # set on the loop when an event or the end arrives
        self._taken = asyncio.Event()  # set on the loop when the response took an event

    def send(self, event: dict[str, Any]) -> None:
        on_loop = self._on_loop()
        with self._changed:
            if not on_loop and not self._changed.wait_for(
                lambda: len(self._waiting) < MAX_WAITING or self._gone, CLIENT_STALL_SECONDS
            ):
                self._gone = True
            if self._gone:
                raise ClientGoneError("the HTTP client went away")
            self._waiting.append(event)
        self._wake(self._arrived)

    async def room(self) -> None:
        """For the part streamed on the loop: wait while `MAX_WAITING` events are untaken;
        `ClientGoneError` when the client went away or took nothing for `CLIENT_STALL_SECONDS`."""
        deadline = self.loop.time() + CLIENT_STALL_SECONDS
        while len(self._waiting) >= MAX_WAITING and not self._gone:
            self._taken.clear()
            try:
                await asyncio.wait_for(self._taken.wait(), max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                self._leave()
        if self._gone:
            raise ClientGoneError("the HTTP client went away")

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """What the turn sends, as it comes, until it ends."""
        while True:
            # Cleared before looking: an event sent after the look sets it again.
            self._arrived.clear()
            with self._changed:
                event = self._waiting.popleft() if self._waiting else None
                ended = self._ended and event is None
                self._changed.notify_all()
            if ended:
                return
            if event is None:
                await self._arrived.wait()
                continue
            self._taken.set()
            yield event

    def end(self) -> None:
        """The turn has sent its last event."""
        with self._changed:
            self._ended = True
        self._wake(self._arrived)

    def leave(self) -> None:
        """The client went away: every later `send` and `room()` raises `ClientGoneError`."""
        self._leave()
        self._wake(self._taken)

    def _leave(self) -> None:
        with self._changed:
            self._gone = True
            self._waiting.clear()
            self._changed.notify_all()

    def _wake(self, event: asyncio.Event) -> None:
        if self._on_loop():
            event.set()
            return
        try:
            self.loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the server's loop is closed: nobody can listen any more
            self._leave()

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False


class RunningTurn:
    """One started turn; iterate `events()` for what it sends, `stop()` when the client left.

    Must be created on the event loop that serves the request.
    """

    def __init__(self, *, holder: KeyHolder, payload: dict[str, Any]) -> None:
        self.outbound = ResponseOutbound(asyncio.get_running_loop())
        self.cancel = threading.Event()
        self.task = asyncio.ensure_future(self._run(holder, payload))
        keep_turn(self.task, self.cancel)
        self.task.add_done_callback(_finished)

    async def _run(self, holder: KeyHolder, payload: dict[str, Any]) -> RequestRecord:
        try:
            record = await chat_turn_async(
                gateway=gateway(),
                identity=Identity(sub=holder.sub, username=holder.username),
                channel=inbound_channel(holder.sub),
                payload=payload,
                outbound=self.outbound,
                stop=TurnStop(cancel=self.cancel),
                store_calls=store_executor(),
                model_calls=turn_executor(),
                entry=ENTRY,
            )
            # Before the response ends, so that a client that reads its key's figures after
            # an answer finds that answer counted.
            await database_step(
                api_key_used, key_id=holder.key_id, input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
            )
            return record
        finally:
            self.outbound.end()

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """The turn's events as they come, until it ends."""
        return self.outbound.events()

    def stop(self) -> None:
        """The client went away: the turn stops reading from the model and settles."""
        self.cancel.set()
        self.outbound.leave()


async def database_step(step: Callable[..., _T], /, **kwargs: Any) -> _T:
    """A short database step of the door (authenticating a key, counting its use) in the
    store pool, with the thread's stale connections closed around it.

    Not `sync_to_async`'s default: that runs all of the server's sync code on one thread, so
    every request's key lookup would queue behind every other's.
    """
    def run() -> _T:
        close_old_connections()
        try:
            return step(**kwargs)
        finally:
            close_old_connections()

    return await asyncio.get_running_loop().run_in_executor(store_executor(), run)


def _finished(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("OpenAI-style turn crashed", exc_info=task.exception())
