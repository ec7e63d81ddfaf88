"""OpenAICompatibleProvider.astream (the event-loop path the Channels door uses) against the
same local server-sent-events server as the synchronous path: same events, same errors,
pooled connections, and a cut turn closes its connection."""
from __future__ import annotations

import asyncio
import socket

import pytest

from dataplane.errors import ModelThrottled, ModelUnavailable, UpstreamError, ValidationError
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta
from dataplane.providers.openai_compatible import OpenAICompatibleProvider


@pytest.fixture
def provider() -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(connect_timeout=2, read_timeout=10, environ={})


def _call(model: str, endpoint: str, text: str = "Hello", **kwargs) -> ModelCall:
    return ModelCall(
        model_id=model, messages=[{"role": "user", "content": [{"text": text}]}], endpoint=endpoint, **kwargs
    )


async def _events(provider: OpenAICompatibleProvider, call: ModelCall, received: list | None = None) -> list:
    events = received if received is not None else []
    async for event in provider.astream(call):
        events.append(event)
    return events


def test_text_streams_in_order_then_usage(openai_server, provider, unique):
    openai_server.script(unique, chunks=["The ", "answer ", "is 42."], usage=(17, 6))

    events = asyncio.run(_events(provider, _call(unique, openai_server.url)))

    assert events == [
        TextDelta("The "), TextDelta("answer "), TextDelta("is 42."),
        StreamEnd(stop_reason="end_turn", input_tokens=17, output_tokens=6),
    ]
    body = openai_server.last_request(unique).body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_the_echo_answer_and_no_usage(openai_server, provider, unique):
    openai_server.script(unique, chunks=["hi"], send_usage=False, finish_reason="length")

    events = asyncio.run(_events(provider, _call(unique, openai_server.url)))

    assert events == [TextDelta("hi"), StreamEnd(stop_reason="max_tokens")]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ModelThrottled), (400, ValidationError), (401, ModelUnavailable), (503, ModelUnavailable),
        (418, UpstreamError),
    ],
)
def test_http_errors_are_mapped_by_status(openai_server, provider, unique, status, expected):
    openai_server.script(unique, status=status, error_message="context too long")

    with pytest.raises(expected) as caught:
        asyncio.run(_events(provider, _call(unique, openai_server.url)))

    assert type(caught.value) is expected
    assert caught.value.details["status"] == status
    if status == 400:
        assert "context too long" in caught.value.message


def test_connection_dropped_mid_stream_yields_chunks_then_unavailable(openai_server, provider, unique):
    openai_server.script(unique, chunks=["a", "b", "c"], fail_after=2)
    received: list = []

    with pytest.raises(ModelUnavailable):
        asyncio.run(_events(provider, _call(unique, openai_server.url), received))

    assert received == [TextDelta("a"), TextDelta("b")]


def test_closed_port_is_unavailable(unique):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAICompatibleProvider(connect_timeout=0.5, read_timeout=0.5, environ={})

    with pytest.raises(ModelUnavailable, match="could not be reached"):
        asyncio.run(_events(provider, _call(unique, f"http://127.0.0.1:{port}")))


def test_a_stalled_server_times_out_as_unavailable(openai_server, unique):
    openai_server.script(unique, chunks=["a", "b"], chunk_delay=2.0)
    provider = OpenAICompatibleProvider(connect_timeout=1, read_timeout=0.3, environ={})
    received: list = []

    with pytest.raises(ModelUnavailable, match="stopped answering"):
        asyncio.run(_events(provider, _call(unique, openai_server.url), received))

    assert StreamEnd not in {type(event) for event in received}


def test_turns_reuse_a_kept_alive_connection_but_never_a_cut_one(openai_server, provider, unique):
    openai_server.script(unique, chunks=["a", "b"], times=2)
    openai_server.script(unique, chunks=[f"w{i} " for i in range(2000)], chunk_delay=0.005)

    async def turns() -> list:
        await _events(provider, _call(unique, openai_server.url))
        await _events(provider, _call(unique, openai_server.url))
        cut = provider.astream(_call(unique, openai_server.url))
        first = [await anext(cut) for _ in range(3)]
        await cut.aclose()
        await _events(provider, _call(unique, openai_server.url))
        return first

    first = asyncio.run(turns())

    assert first == [TextDelta("w0 "), TextDelta("w1 "), TextDelta("w2 ")]
    requests = openai_server.requests_for(unique)
    ports = [received.client_port for received in requests]
    assert ports[0] == ports[1] == ports[2]  # one TCP connection for three turns
    assert ports[3] != ports[2]  # the cut turn's connection was closed, not handed on
    assert requests[2].finished.wait(timeout=10), "the server kept streaming after the client closed"
    assert requests[2].client_disconnected
    assert requests[2].chunks_sent < 2000


def test_many_answers_stream_at_once_on_one_loop(openai_server, provider, unique):
    openai_server.script(unique, chunks=[f"c{i} " for i in range(20)], chunk_delay=0.01, usage=(3, 20))

    async def together() -> list[list]:
        return await asyncio.gather(*(_events(provider, _call(unique, openai_server.url)) for _ in range(40)))

    answers = asyncio.run(together())

    assert all("".join(e.text for e in events[:-1]) == "".join(f"c{i} " for i in range(20)) for events in answers)
    assert all(events[-1] == StreamEnd(stop_reason="end_turn", input_tokens=3, output_tokens=20) for events in answers)
