"""The worker threads a process lends to chat turns, shared by every door that runs them on
an event loop (the Channels door and the OpenAI-compatible `/v1` door).

A turn run by `dataplane.pipeline.chat_turn_async` reads an async-capable model on the loop
and needs a thread only for its short blocking steps (policy, stored answers, reserve,
settle, telemetry): those share `store_executor()`. A provider that can only stream
synchronously (Bedrock through boto3, a guardrail-checked model) streams on
`turn_executor()`, whose size (`GATEWAY_TURN_WORKERS`) then bounds those turns only. One pool
of each per process, whichever door started the turn, so the settings mean one thing.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

_executors: dict[str, ThreadPoolExecutor] = {}
_executor_lock = threading.Lock()


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
