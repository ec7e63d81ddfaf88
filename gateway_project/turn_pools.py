"""The worker threads a process lends to chat turns, shared by every door that runs them on
an event loop (the Channels door and the OpenAI-compatible `/v1` door), and the turns running
on that loop, which a stopping server lets finish (`drain`).

A turn run by `dataplane.pipeline.chat_turn_async` reads an async-capable model on the loop
and needs a thread only for its short blocking steps (policy, stored answers, reserve,
settle, telemetry): those share `store_executor()`. A provider that can only stream
synchronously (Bedrock through boto3, a guardrail-checked model) streams on
`turn_executor()`, whose size (`GATEWAY_TURN_WORKERS`) then bounds those turns only. One pool
of each per process, whichever door started the turn, so the settings mean one thing.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

logger = logging.getLogger("gateway.turns")

_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()
# Every turn running in this process, with the event that stops it; also keeps fire-and-forget
# tasks from being collected.
_running: dict[asyncio.Future, threading.Event] = {}
# After the grace period, how long stopped turns get to settle before they are cancelled.
STOP_SECONDS = 5.0


def _pool(name: str, size: int) -> ThreadPoolExecutor:
    with _executor_lock:
        if name not in _executors:
            _executors[name] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        return _executors[name]


def turn_executor() -> ThreadPoolExecutor:
    """Threads for models that stream synchronously; `GATEWAY_TURN_WORKERS` bounds those turns."""
    return _pool("chat-turn", settings.GATEWAY_TURN_WORKERS)


def store_executor() -> ThreadPoolExecutor:
    """Threads for a turn's short store and telemetry steps, apart from the model streams so
    that they never queue behind a long answer."""
    return _pool("chat-store", settings.GATEWAY_STORE_WORKERS)


def keep_turn(task: asyncio.Future, cancel: threading.Event) -> None:
    """Hold a started turn until it ends; `cancel` stops it (it then settles what streamed)."""
    _running[task] = cancel
    task.add_done_callback(_forget)


def _forget(task: asyncio.Future) -> None:
    _running.pop(task, None)


def running_turns() -> list[asyncio.Future]:
    """The turns running on this event loop (a server has one; tests start one per test)."""
    loop = asyncio.get_running_loop()
    return [task for task in _running if task.get_loop() is loop]


async def drain(*, grace_seconds: float, stop_seconds: float = STOP_SECONDS) -> int:
    """Let this loop's running turns finish, for a server that is stopping; returns how many ran.

    A turn still running after `grace_seconds` is stopped as a cancel stops it (it stops
    reading from the model and settles what streamed); one that has not ended `stop_seconds`
    later is cancelled (its `finally` still settles). Without this, a stopping server's loop
    ends with turns half-way: their reservations stay counted for the rest of the window.
    """
    turns = running_turns()
    if not turns:
        return 0
    logger.info("letting %d running turn(s) finish (up to %.0f s)", len(turns), grace_seconds)
    _, pending = await asyncio.wait(turns, timeout=grace_seconds)
    if pending:
        logger.warning("stopping %d turn(s) still running after %.0f s", len(pending), grace_seconds)
        for task in pending:
            _running.get(task, threading.Event()).set()
        _, pending = await asyncio.wait(pending, timeout=stop_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return len(turns)
