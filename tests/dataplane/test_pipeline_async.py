"""`chat_turn_async`: the same turn as `chat_turn`, with the model read on the event loop.

A provider with `astream` streams on the loop; one without streams on the model executor.
Either way the events, the billing and the record are those of the synchronous turn.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dataplane.errors import ModelThrottled
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn, chat_turn_async
from dataplane.providers.base import ModelCall, ProviderEvent
from dataplane.stopping import TurnStop
from tests.dataplane.conftest import ALICE, ScriptedProvider, chat_request
from tests.dataplane.test_pipeline import usage_of

alice = Identity(sub=ALICE, username="alice")


class AsyncScriptedProvider(ScriptedProvider):
    """The scripted model, also readable on an event loop; records where each chunk was read."""

    def __init__(self) -> None:
        super().__init__()
        self.read_on: list[str] = []

    async def astream(self, call: ModelCall) -> AsyncIterator[ProviderEvent]:
        for event in self.stream(call):
            self.read_on.append(threading.current_thread().name)
            await asyncio.sleep(0)
            yield event


@pytest.fixture
def async_provider(gateway) -> AsyncScriptedProvider:
    provider = AsyncScriptedProvider()
    gateway.provider_factory = lambda model, config: provider
    gateway._providers.clear()
    return provider


def run_async(gateway, payload, *, outbound=None, cancel=None):
    outbound = outbound or ListOutbound()

    async def turn():
        with ThreadPoolExecutor(2, thread_name_prefix="store") as store, \
                ThreadPoolExecutor(2, thread_name_prefix="model") as model:
            return await chat_turn_async(
                gateway=gateway, identity=alice, channel=f"/inbound/{ALICE}", payload=payload, outbound=outbound,
                stop=TurnStop(cancel=cancel), store_calls=store, model_calls=model,
            )

    return asyncio.run(turn()), outbound


def without_latency(events: list[dict]) -> list[dict]:
    for event in events:
        event.get("metadata", {}).pop("metrics", None)
    return events


def test_the_async_turn_sends_and_bills_what_the_sync_turn_does(gateway, async_provider):
    record, out = run_async(gateway, chat_request(text="first", conversationId="a"))
    sync_out = ListOutbound()
    sync_record = chat_turn(gateway=gateway, identity=alice, channel=f"/inbound/{ALICE}",
                            payload=chat_request(text="second", conversationId="a"), outbound=sync_out)

    assert set(async_provider.read_on) == {"MainThread"}  # read on the loop, no thread of its own
    assert out.texts() == sync_out.texts() == "Hello, world."
    kinds = [next(k for k in e if k != "conversationId") for e in out.events]
    assert kinds == ["messageStart"] + ["contentBlockDelta"] * 4 + ["contentBlockStop", "messageStop", "metadata"]
    first, second = without_latency(out.events)[-1]["metadata"], without_latency(sync_out.events)[-1]["metadata"]
    assert first["usage"] == second["usage"] == {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16}
    assert (first["tokenUsage"]["10m"]["used"], second["tokenUsage"]["10m"]["used"]) == (16, 32)
    assert (record.outcome, record.cache, record.total_tokens) == (sync_record.outcome, sync_record.cache, 16)
    usage = usage_of(gateway)["10m"]
    assert (usage.total, usage.reserved) == (32, 0)


def test_a_provider_without_astream_streams_on_the_model_executor(gateway, provider):
    threads: list[str] = []
    stream = provider.stream

    def recording(call):
        for event in stream(call):
            threads.append(threading.current_thread().name)
            yield event

    provider.stream = recording
    record, out = run_async(gateway, chat_request())

    assert out.texts() == "Hello, world."
    assert threads
    assert all(name.startswith("model") for name in threads)
    assert record.outcome == "ok"
    assert usage_of(gateway)["10m"].total == 16


def test_cancel_on_the_loop_stops_the_stream_and_bills_what_streamed(gateway, async_provider):
    cancel = threading.Event()

    class CancelAfterTwoDeltas(ListOutbound):
        def send(self, event):
            super().send(event)
            if sum("contentBlockDelta" in e for e in self.events) == 2:
                cancel.set()

    record, out = run_async(gateway, chat_request(), outbound=CancelAfterTwoDeltas(), cancel=cancel)

    assert record.outcome == "cancelled"
    assert out.texts() == "Hello, "
    assert out.events[-2]["messageStop"]["stopReason"] == "cancelled"
    assert async_provider.closed == 1  # the model's stream was closed, not left running
    usage = usage_of(gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens > 0


def test_a_model_failing_on_the_loop_gives_a_typed_error_and_bills_the_streamed_part(gateway, async_provider):
    async_provider.fail_after, async_provider.error = 2, ModelThrottled("The model is busy; try again in a moment.")

    record, out = run_async(gateway, chat_request())

    [error] = out.errors()
    assert error["type"] == "ModelThrottled"
    assert out.texts() == "Hello, "
    assert record.outcome == "error"
    assert record.output_tokens > 0
    usage = usage_of(gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens


def test_a_bug_on_the_loop_is_an_internal_error_with_a_reference(gateway, async_provider, caplog):
    async def broken(call):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    async_provider.astream = broken
    record, out = run_async(gateway, chat_request())

    [error] = out.errors()
    assert error["type"] == "InternalError"
    assert record.request_id in error["message"]
    assert "boom" not in error["message"]
    assert usage_of(gateway)["10m"].reserved == 0
    assert any(entry.exc_info and "boom" in str(entry.exc_info[1]) for entry in caplog.records)
