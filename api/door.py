"""Running one OpenAI-style request through the data plane's chat turn, off the event loop.

The pipeline is synchronous (it is what the Lambda runs), so the turn runs in a worker thread
and hands its events to the request's event loop through a queue. When the HTTP client goes
away, the next event the turn sends raises `ClientGoneError`, and the pipeline settles what was
streamed as it does for every other door.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from api.selectors import KeyHolder
from api.services import api_key_usage_add
from dataplane.channels import inbound_channel
from dataplane.outbound import ClientGoneError
from dataplane.pipeline import Identity, chat_turn
from gateway_project.gateway import gateway

logger = logging.getLogger("api.door")

ENTRY = "openai"  # the door's name in telemetry and the lake
_END = object()  # put on the queue when the turn has ended

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _turn_executor() -> ThreadPoolExecutor:
    global _executor  # noqa: PLW0603 - one pool per process, created on first use
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.GATEWAY_TURN_WORKERS, thread_name_prefix="openai-turn")
        return _executor


class QueueOutbound:
    """The turn's outbound sink: events cross from the worker thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.gone = threading.Event()

    def send(self, event: dict[str, Any]) -> None:
        if self.gone.is_set():
            raise ClientGoneError("the HTTP client went away")
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, _END)


class RunningTurn:
    """One started turn; iterate `events()` for what it sends, `stop()` when the client left."""

    def __init__(self, *, holder: KeyHolder, payload: dict[str, Any]) -> None:
        self.outbound = QueueOutbound(asyncio.get_running_loop())
        self.cancel = threading.Event()
        self.future = self.outbound.loop.run_in_executor(_turn_executor(), self._run, holder, payload)

    def _run(self, holder: KeyHolder, payload: dict[str, Any]) -> None:
        try:
            record = chat_turn(
                gateway=gateway(),
                identity=Identity(sub=holder.sub, username=holder.username),
                channel=inbound_channel(holder.sub),
                payload=payload,
                outbound=self.outbound,
                cancel=self.cancel,
                entry=ENTRY,
            )
            if record.total_tokens:
                close_old_connections()
                try:
                    api_key_usage_add(
                        key_id=holder.key_id, input_tokens=record.input_tokens, output_tokens=record.output_tokens
                    )
                finally:
                    close_old_connections()
        finally:
            self.outbound.end()

    async def events(self) -> Any:
        """The turn's events as they come, until it ends."""
        while True:
            event = await self.outbound.queue.get()
            if event is _END:
                return
            yield event

    def stop(self) -> None:
        """The client went away: the turn stops reading from the model and settles."""
        self.outbound.gone.set()
        self.cancel.set()
