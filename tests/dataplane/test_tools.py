"""Tool use passed through the chat turn: the shapes a request may carry, a tool-calling
exchange through the real Bedrock provider against the local ConverseStream server, and the
rules around it (billing the calls, no cache, models that cannot call tools)."""
from __future__ import annotations

import json

import pytest

from chat.outbound import coalesce
from dataplane.config import GatewayConfig
from dataplane.errors import ValidationError
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn
from dataplane.providers.base import (
    GuardrailConfig,
    GuardrailVerdict,
    ModelCall,
    StreamEnd,
    ToolUseInput,
    ToolUseStart,
)
from dataplane.providers.guarded import GuardedProvider
from dataplane.requests import parse_chat_request
from dataplane.tokens import estimate_messages
from tests.dataplane.conftest import ALICE, MODEL, chat_request
from tests.dataplane.test_pipeline import usage_of

alice = Identity(sub=ALICE)
WEATHER = {
    "toolSpec": {
        "name": "weather",
        "description": "The weather in a city now.",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
}
TOOLS = {"tools": [WEATHER], "toolChoice": {"auto": {}}}
CALL = {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Seoul"}}}
RESULT = {"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"celsius": 3}}], "status": "success"}}


def exchange() -> list[dict]:
    """A question, the model's call, and the tool's result: the second request of a tool loop."""
    return [
        {"role": "user", "content": [{"text": "Do I need a coat in Seoul?"}]},
        {"role": "assistant", "content": [{"text": ""}, CALL]},
        {"role": "user", "content": [RESULT]},
    ]


def turn(gateway, payload):
    outbound = ListOutbound()
    record = chat_turn(gateway=gateway, identity=alice, channel=f"/inbound/{ALICE}", payload=payload,
                       outbound=outbound)
    return record, outbound


# --- what a request may carry ----------------------------------------------------------------


def test_a_tool_exchange_parses_and_blank_text_beside_a_call_is_dropped():
    request = parse_chat_request(chat_request(messages=exchange(), toolConfig=TOOLS), GatewayConfig())

    assert request.tool_config == TOOLS
    assert request.messages[1]["content"] == [CALL]  # Bedrock refuses a blank text block
    assert '"celsius":3' in request.all_text()  # the privacy check reads tool results too
    with_tools = estimate_messages(request.messages, None, request.tool_config)
    assert with_tools > estimate_messages(request.messages) > estimate_messages(request.messages[:1])


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"toolConfig": {"tools": []}}, "toolConfig.tools", "1 to 128"),
        ({"toolConfig": {"tools": [{"toolSpec": {"name": "has space", "inputSchema": {"json": {}}}}]}},
         "toolConfig.tools", "name"),
        ({"toolConfig": {"tools": [{"toolSpec": {"name": "w"}}]}}, "toolConfig.tools", "inputSchema"),
        ({"toolConfig": {"tools": [WEATHER, WEATHER]}}, "toolConfig.tools", "name of its own"),
        ({"toolConfig": {"tools": [WEATHER], "toolChoice": {"tool": {"name": "other"}}}},
         "toolConfig.toolChoice", "one of the tools"),
        ({"toolConfig": None}, "toolConfig", "offers no tools"),
        ({"messages": [{"role": "user", "content": [RESULT]}]}, "messages", "no earlier assistant message"),
        ({"messages": [{"role": "user", "content": [CALL]}]}, "messages", "belongs in an assistant message"),
        ({"messages": [{"role": "user", "content": [{"image": {}}]}]}, "messages", "not text, toolUse or toolResult"),
    ],
)
def test_malformed_tool_requests_are_refused_naming_the_field(change, field, words):
    payload = chat_request(messages=exchange(), toolConfig=TOOLS)
    payload.update(change)
    if payload["toolConfig"] is None:
        del payload["toolConfig"]

    with pytest.raises(ValidationError) as refused:
        parse_chat_request(payload, GatewayConfig())

    assert refused.value.details["field"] == field
    assert words in refused.value.message


# --- a tool loop through Bedrock ----------------------------------------------------------------


def test_the_model_calls_a_tool_then_answers_from_its_result(bedrock_gateway, bedrock_server, telemetry):
    bedrock_server.script(MODEL, chunks=["Let me check."], usage=(80, 20), times=1,
                          tool_uses=[("tooluse_1", "weather", ['{"city":', '"Seoul"}'])])

    record, out = turn(bedrock_gateway, chat_request("Do I need a coat in Seoul?", toolConfig=TOOLS))

    sent = bedrock_server.last_request(MODEL)
    assert sent.body["toolConfig"] == TOOLS
    [start] = [e["contentBlockStart"] for e in out.events if "contentBlockStart" in e]
    assert start == {"start": {"toolUse": {"toolUseId": "tooluse_1", "name": "weather"}}, "contentBlockIndex": 1}
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in out.events if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    assert json.loads(arguments) == {"city": "Seoul"}
    assert out.texts() == "Let me check."
    assert {"contentBlockStop": {"contentBlockIndex": 1}, "conversationId": "conv-1"} in out.events
    assert [e["messageStop"]["stopReason"] for e in out.events if "messageStop" in e] == ["tool_use"]
    assert (record.stop_reason, record.input_tokens, record.output_tokens) == ("tool_use", 80, 20)
    assert record.cache == "skipped"  # a tool exchange is never answered from, nor written to, the cache
    assert usage_of(bedrock_gateway)["10m"].total == 100

    bedrock_server.script(MODEL, chunks=["Yes: 3 °C."], usage=(120, 6), times=1)
    record, out = turn(bedrock_gateway, chat_request(messages=exchange(), toolConfig=TOOLS))

    sent = bedrock_server.last_request(MODEL)
    assert sent.messages[1] == {"role": "assistant", "content": [CALL]}
    assert sent.messages[2] == {"role": "user", "content": [RESULT]}
    assert out.texts() == "Yes: 3 °C."
    assert usage_of(bedrock_gateway)["10m"].total == 226


def test_a_call_cut_off_by_the_client_is_billed_with_its_streamed_input(gateway, provider):
    def calls_a_tool(call):
        yield ToolUseStart(call=0, tool_use_id="t1", name="weather")
        yield ToolUseInput(call=0, text='{"city": "Seoul", "detail": "' + "x" * 400)
        yield ToolUseInput(call=0, text='"}')
        yield StreamEnd(stop_reason="tool_use")

    provider.stream = calls_a_tool
    provider.takes_tools = True
    outbound = ListOutbound(gone_after=3)  # messageStart, the call's start, part of its input

    record = chat_turn(gateway=gateway, identity=alice, channel=f"/inbound/{ALICE}",
                       payload=chat_request(toolConfig=TOOLS), outbound=outbound)

    assert record.outcome == "cancelled"
    assert record.estimated_usage
    assert record.output_tokens >= 100  # the streamed input JSON, estimated
    usage = usage_of(gateway)["10m"]
    assert (usage.total, usage.reserved) == (record.total_tokens, 0)


def test_a_model_that_cannot_call_tools_is_refused_before_anything_is_reserved(gateway, provider):
    record, out = turn(gateway, chat_request(toolConfig=TOOLS))  # the scripted model takes no tools

    [error] = out.errors()
    assert (error["type"], error["field"]) == ("ValidationError", "toolConfig")
    assert "cannot call tools" in error["message"]
    assert provider.calls == []
    assert record.outcome == "refused"
    assert usage_of(gateway)["10m"].total == 0


def test_a_guarded_model_passes_tool_calls_through_and_checks_only_text():
    class Model:
        name = "upstream"
        takes_tools = True

        def stream(self, call):
            yield ToolUseStart(call=0, tool_use_id="t1", name="weather")
            yield ToolUseInput(call=0, text="{}")
            yield StreamEnd(stop_reason="tool_use", input_tokens=5, output_tokens=2)

    class Checker:
        def __init__(self):
            self.texts = []

        def apply_guardrail(self, guardrail, *, source, text):
            self.texts.append((source, text))
            return GuardrailVerdict(blocked=False, found_pii=False, text=text)

    checker = Checker()
    guarded = GuardedProvider(Model(), checker=checker, guardrail=GuardrailConfig(identifier="g", version="1"))
    call = ModelCall(model_id="m", messages=exchange(), tool_config=TOOLS)

    events = list(guarded.stream(call))

    assert guarded.takes_tools
    assert events[:2] == [ToolUseStart(call=0, tool_use_id="t1", name="weather"), ToolUseInput(call=0, text="{}")]
    assert events[-1].stop_reason == "tool_use"
    assert checker.texts == []  # the last user message holds a tool result only; the answer no text


def test_tool_input_deltas_coalesce_apart_from_text():
    def delta(index, **body):
        return {"contentBlockDelta": {"delta": body, "contentBlockIndex": index}, "conversationId": "c"}

    joined = coalesce([
        delta(0, text="a"), delta(0, text="b"),
        delta(1, toolUse={"input": '{"ci'}), delta(1, toolUse={"input": 'ty": 1}'}),
    ])

    assert joined == [delta(0, text="ab"), delta(1, toolUse={"input": '{"city": 1}'})]

