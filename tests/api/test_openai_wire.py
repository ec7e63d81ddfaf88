"""The OpenAI <-> Converse translation, on its own: what each request becomes, what each
pipeline event becomes, and what the door refuses by name."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dataplane.errors import ValidationError
from dataplane.openai_wire import CompletionBuilder, completion_request, error_response


def test_request_becomes_the_pipeline_payload():
    request = completion_request({
        "model": "demo.echo-v1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
        "max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stop": "END",
        "stream": True, "stream_options": {"include_usage": True}, "user": "ignored", "n": 1,
    })
    assert request.stream is True
    assert request.include_usage is True
    assert request.payload == {
        "modelId": "demo.echo-v1",
        "system": "Be brief.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": [{"text": "Hi\n\nthere"}]},  # joined: Converse alternates roles
            {"role": "assistant", "content": [{"text": "Hello"}]},
            {"role": "user", "content": [{"text": "Bye"}]},
        ],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "not a name!"}}]}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),  # without tools
        ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "maybe"}, "tool_choice"),
        ({"temperature": 1.5}, "temperature"),
        ({"n": 2}, "n"),
        ({"max_tokens": 0}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
        ({"frobnicate": 1}, "frobnicate"),
        ({"model": ""}, "model"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "tools"),  # a result, no tools
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ],
)
def test_what_the_gateway_cannot_honour_is_refused_by_name(body, param):
    with pytest.raises(ValidationError) as refused:
        completion_request({"model": "m", "messages": [{"role": "user", "content": "hi"}], **body})
    assert refused.value.details["field"] == param
    assert refused.value.message  # a sentence for the caller


def test_events_become_chunks_and_a_completion():
    builder = CompletionBuilder(model="m", created=1, include_usage=True)
    chunks = []
    for event in [
        {"messageStart": {"role": "assistant"}, "requestId": "r1"},
        {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "max_tokens"}},
        {"metadata": {"usage": {"inputTokens": 7, "outputTokens": 2, "totalTokens": 9}}},
    ]:
        chunks.extend(builder.chunks(event))
    deltas = [c["choices"][0]["delta"] for c in chunks[:3]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "Hel"}, {"content": "lo"}]
    assert chunks[3]["choices"][0]["finish_reason"] == "length"
    assert chunks[4] == {"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                         "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}
    completion = builder.completion()
    assert completion["choices"][0]["message"]["content"] == "Hello"
    assert completion["usage"]["total_tokens"] == 9


def test_quota_refusal_says_when_to_retry():
    now = datetime(2026, 12, 1, 10, 3, 30, tzinfo=UTC)
    shaped = error_response(
        {"type": "QuotaExceeded", "message": "Not enough room", "resetsAt": "2026-12-01T10:10:00+00:00"},
        now=now,
    )
    assert (shaped.status, shaped.retry_after) == (429, 390)
    assert shaped.body["error"]["type"] == "rate_limit_error"
    assert shaped.body["error"]["code"] == "quota_exceeded"


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("ValidationError", 400), ("ModelNotAllowed", 403), ("ModelThrottled", 429), ("ModelUnavailable", 503),
     ("UpstreamError", 502), ("TimeLimitReached", 504), ("InternalError", 500)],
)
def test_error_statuses(error_type, status):
    assert error_response({"type": error_type, "message": "m"}, now=datetime.now(UTC)).status == status


WEATHER_FUNCTION = {
    "type": "function",
    "function": {
        "name": "weather", "description": "The weather in a city now.", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_tools_and_a_tool_exchange_become_converse_tool_blocks():
    request = completion_request({
        "model": "m",
        "tools": [WEATHER_FUNCTION],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "messages": [
            {"role": "user", "content": "Coat?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Seoul"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Busan"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "3 C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9 C"}]},
            {"role": "user", "content": "Thanks"},
        ],
    })

    assert request.payload["toolConfig"] == {
        "tools": [{"toolSpec": {
            "name": "weather", "description": "The weather in a city now.",
            "inputSchema": {"json": WEATHER_FUNCTION["function"]["parameters"]},
        }}],
        "toolChoice": {"tool": {"name": "weather"}},
    }
    assert request.payload["messages"] == [
        {"role": "user", "content": [{"text": "Coat?"}]},
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Seoul"}}},
            {"toolUse": {"toolUseId": "call_2", "name": "weather", "input": {"city": "Busan"}}},
        ]},
        # the tool results and the user's next words are one user message: Converse alternates roles
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": "3 C"}]}},
            {"toolResult": {"toolUseId": "call_2", "content": [{"text": "9 C"}]}},
            {"text": "Thanks"},
        ]},
    ]


@pytest.mark.parametrize(("choice", "converse"), [("auto", {"auto": {}}), ("required", {"any": {}})])
def test_tool_choice_words(choice, converse):
    request = completion_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                  "tools": [WEATHER_FUNCTION], "tool_choice": choice})
    assert request.payload["toolConfig"]["toolChoice"] == converse


def test_tool_choice_none_offers_no_tools_unless_the_conversation_already_used_them():
    plain = completion_request({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                "tools": [WEATHER_FUNCTION], "tool_choice": "none"})
    assert "toolConfig" not in plain.payload

    with pytest.raises(ValidationError) as refused:
        completion_request({
            "model": "m", "tools": [WEATHER_FUNCTION], "tool_choice": "none",
            "messages": [
                {"role": "user", "content": "Coat?"},
                {"role": "assistant", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "3 C"},
            ],
        })
    assert refused.value.details["field"] == "tool_choice"


def test_malformed_tool_call_arguments_are_refused():
    with pytest.raises(ValidationError) as refused:
        completion_request({"model": "m", "tools": [WEATHER_FUNCTION], "messages": [
            {"role": "user", "content": "Coat?"},
            {"role": "assistant", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{not json"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "3 C"},
        ]})
    assert refused.value.details["field"] == "messages"
    assert "arguments must be a JSON object" in refused.value.message


TOOL_EVENTS = [
    {"messageStart": {"role": "assistant"}, "requestId": "r2"},
    {"contentBlockDelta": {"delta": {"text": "Checking."}, "contentBlockIndex": 0}},
    {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "call_1", "name": "weather"}}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city":'}}, "contentBlockIndex": 1}},
    {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Seoul"}'}}, "contentBlockIndex": 1}},
    {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "call_2", "name": "clock"}}, "contentBlockIndex": 2}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 1}},
    {"contentBlockStop": {"contentBlockIndex": 2}},
    {"messageStop": {"stopReason": "tool_use"}},
    {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39}}},
]


def test_tool_use_events_become_tool_call_chunks_and_a_completion():
    builder = CompletionBuilder(model="m", created=1)
    deltas = [chunk["choices"][0]["delta"] for event in TOOL_EVENTS for chunk in builder.chunks(event)]

    assert deltas[2:6] == [
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Seoul"}'}}]},
        {"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                         "function": {"name": "clock", "arguments": ""}}]},
    ]
    message = builder.completion()["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] == "Checking."
    assert message["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Seoul"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "clock", "arguments": ""}},
    ]


def test_a_pipeline_field_is_reported_as_the_openai_parameter():
    shaped = error_response({"type": "ValidationError", "message": "m", "field": "toolConfig"}, now=datetime.now(UTC))
    assert shaped.body["error"]["param"] == "tools"
