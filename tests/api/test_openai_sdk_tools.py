"""Tool calling through the OpenAI-compatible door, driven by the real OpenAI SDK against a
real daphne process and a local OpenAI-style upstream: the loop an agent runs (offer tools,
get a call, run it, send the result, get the answer), streamed and not."""
from __future__ import annotations

import json

import openai
import pytest

from api.services import api_key_create
from tests.api.test_openai_sdk import client_for, serve, upstream_model, usage_in_store  # noqa: F401 - fixture
from tests.chat.conftest import DEMO_MODEL, publish_policy

pytestmark = pytest.mark.django_db(transaction=True)
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city now.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_an_agent_loop_with_tools_streamed_and_not(alice, openai_server, serve):  # noqa: F811 - the fixture
    upstream = upstream_model(openai_server, "api-tools")
    publish_policy(alice, models=(DEMO_MODEL, upstream))
    client = client_for(serve(), api_key_create(user=alice, name="agent").secret)
    question = {"role": "user", "content": "Do I need a coat in Seoul?"}

    openai_server.script("api-tools", chunks=[], tool_calls=[("call_a1", "weather", ['{"city":', ' "Seoul"}'])],
                         usage=(60, 9), times=1)
    stream = client.chat.completions.create(
        model="api-tools", messages=[question], tools=[WEATHER], tool_choice="required", stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert (calls[0].id, calls[0].function.name) == ("call_a1", "weather")
    assert json.loads("".join(call.function.arguments or "" for call in calls)) == {"city": "Seoul"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage.total_tokens == 69
    sent = openai_server.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert sent["tool_choice"] == "required"

    openai_server.script("api-tools", chunks=[], tool_calls=[("call_a2", "weather", ['{"city": "Seoul"}'])],
                         usage=(60, 9), times=1)
    completion = client.chat.completions.create(model="api-tools", messages=[question], tools=[WEATHER])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_a2", "weather",
                                                                                  {"city": "Seoul"})

    openai_server.script("api-tools", chunks=["Yes, ", "it is 3 °C."], usage=(90, 8), times=1)
    answer = client.chat.completions.create(
        model="api-tools", tools=[WEATHER],
        messages=[question, choice.message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 3})}],
    )
    assert answer.choices[0].message.content == "Yes, it is 3 °C."
    sent = openai_server.requests[-1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_a2"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_a2", "content": '{"celsius": 3}'}

    # The calls were billed like any answer, in the one quota both doors share.
    assert usage_in_store(alice) == {"10m": 69 + 69 + 98, "month": 69 + 69 + 98}


def test_a_model_that_cannot_call_tools_is_a_400_naming_tools(alice, serve):  # noqa: F811 - the fixture
    publish_policy(alice, models=(DEMO_MODEL,))
    client = client_for(serve(), api_key_create(user=alice, name="agent").secret)

    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="demo.echo-v1", messages=[{"role": "user", "content": "hi"}],
                                       tools=[WEATHER])

    assert refused.value.body["param"] == "tools"
    assert "cannot call tools" in refused.value.message
    assert usage_in_store(alice) == {"10m": 0, "month": 0}
