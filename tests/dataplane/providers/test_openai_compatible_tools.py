"""Tool use through an OpenAI-compatible server: the Converse-shaped call goes out as OpenAI's
`tools`, `tool_calls` and `tool` messages, and the streamed `tool_calls` deltas come back as
tool events, on both ways of reading."""
from __future__ import annotations

import asyncio
import json

import pytest

from dataplane.providers.base import ModelCall, StreamEnd, TextDelta, ToolUseInput, ToolUseStart
from dataplane.providers.openai_compatible import OpenAICompatibleProvider

WEATHER = {
    "toolSpec": {
        "name": "weather",
        "description": "The weather in a city now.",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
CALL = {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Seoul"}}}
RESULT = {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"celsius": 3}}], "status": "error"}}


@pytest.fixture
def provider() -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(connect_timeout=2, read_timeout=10, environ={})


def read(provider: OpenAICompatibleProvider, call: ModelCall, *, on_loop: bool) -> list:
    if not on_loop:
        return list(provider.stream(call))

    async def collect() -> list:
        return [event async for event in provider.astream(call)]

    return asyncio.run(collect())


@pytest.mark.parametrize("on_loop", [False, True], ids=["sync", "async"])
def test_tool_calls_stream_back_as_tool_events(openai_server, provider, unique, on_loop):
    openai_server.script(
        unique, chunks=["Checking."], usage=(40, 12),
        tool_calls=[("call_1", "weather", ['{"city"', ': "Seoul"}']), ("call_2", "weather", ['{"city": "Busan"}'])],
    )
    call = ModelCall(
        model_id=unique, messages=[{"role": "user", "content": [{"text": "Coat?"}]}], endpoint=openai_server.url,
        tool_config={"tools": [WEATHER], "toolChoice": {"tool": {"name": "weather"}}},
    )

    events = read(provider, call, on_loop=on_loop)

    assert events == [
        TextDelta("Checking."),
        ToolUseStart(call=0, tool_use_id="call_1", name="weather"),
        ToolUseInput(call=0, text='{"city"'),
        ToolUseInput(call=0, text=': "Seoul"}'),
        ToolUseStart(call=1, tool_use_id="call_2", name="weather"),
        ToolUseInput(call=1, text='{"city": "Busan"}'),
        StreamEnd(stop_reason="tool_use", input_tokens=40, output_tokens=12),
    ]
    sent = openai_server.requests[-1].body
    assert sent["tools"] == [{
        "type": "function",
        "function": {"name": "weather", "description": "The weather in a city now.",
                     "parameters": WEATHER["toolSpec"]["inputSchema"]["json"]},
    }]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}


def test_a_tool_exchange_goes_out_as_tool_calls_and_tool_messages(openai_server, provider, unique):
    openai_server.script(unique, chunks=["Yes."])
    call = ModelCall(
        model_id=unique, endpoint=openai_server.url, system="Be brief.",
        messages=[
            {"role": "user", "content": [{"text": "Coat?"}]},
            {"role": "assistant", "content": [{"text": "Checking."}, CALL]},
            {"role": "user", "content": [RESULT, {"text": "And an umbrella?"}]},
        ],
        tool_config={"tools": [WEATHER], "toolChoice": {"any": {}}},
    )

    assert next(iter(provider.stream(call))) == TextDelta("Yes.")

    sent = openai_server.requests[-1].body
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Coat?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Seoul"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: " + json.dumps({"celsius": 3})},
        {"role": "user", "content": "And an umbrella?"},
    ]
    assert sent["tool_choice"] == "required"


def test_a_text_only_call_sends_no_tools(openai_server, provider, unique):
    openai_server.script(unique, chunks=["Hi."])

    list(provider.stream(ModelCall(model_id=unique, messages=[{"role": "user", "content": "Hi"}],
                                   endpoint=openai_server.url)))

    assert "tools" not in openai_server.requests[-1].body
    assert "tool_choice" not in openai_server.requests[-1].body
