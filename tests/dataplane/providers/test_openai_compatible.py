"""OpenAICompatibleProvider against the local server-sent-events server."""
from __future__ import annotations

import socket

import pytest

from dataplane.errors import ModelThrottled, ModelUnavailable, UpstreamError, ValidationError
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta
from dataplane.providers.openai_compatible import (
    OpenAICompatibleProvider,
    _body_pieces,
    _server_sent_data,
    api_key_variable,
    completions_path,
)


@pytest.fixture
def provider() -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(connect_timeout=2, read_timeout=10, environ={})


def _call(model: str, endpoint: str, text: str = "Hello", **kwargs) -> ModelCall:
    return ModelCall(
        model_id=model, messages=[{"role": "user", "content": [{"text": text}]}], endpoint=endpoint, **kwargs
    )


def test_text_streams_in_order_then_usage(openai_server, provider, unique):
    openai_server.script(unique, chunks=["The ", "answer ", "is 42."], usage=(17, 6))

    events = list(provider.stream(_call(unique, openai_server.url)))

    assert events == [
        TextDelta("The "), TextDelta("answer "), TextDelta("is 42."),
        StreamEnd(stop_reason="end_turn", input_tokens=17, output_tokens=6),
    ]


def test_request_asks_for_a_stream_with_usage_and_converts_messages(openai_server, provider, unique):
    call = ModelCall(
        model_id=unique,
        messages=[
            {"role": "user", "content": [{"text": "first "}, {"text": "question"}]},
            {"role": "assistant", "content": [{"text": "reply"}]},
            {"role": "user", "content": "second"},
        ],
        system="Be brief.",
        max_tokens=99,
        temperature=0.3,
        endpoint=openai_server.url + "/",
    )

    list(provider.stream(call))

    body = openai_server.last_request(unique).body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["model"], body["max_tokens"], body["temperature"]) == (unique, 99, 0.3)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
    ]


def test_no_usage_gives_a_stream_end_without_counts(openai_server, provider, unique):
    openai_server.script(unique, chunks=["hi"], send_usage=False)

    events = list(provider.stream(_call(unique, openai_server.url)))

    assert events == [TextDelta("hi"), StreamEnd(stop_reason="end_turn")]


def test_length_finish_maps_to_max_tokens(openai_server, provider, unique):
    openai_server.script(unique, chunks=["cut"], finish_reason="length")

    *_, end = provider.stream(_call(unique, openai_server.url))

    assert end.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ModelThrottled),
        (400, ValidationError),
        (422, ValidationError),
        (401, ModelUnavailable),
        (404, ModelUnavailable),
        (500, ModelUnavailable),
        (503, ModelUnavailable),
        (418, UpstreamError),
    ],
)
def test_http_errors_are_mapped_by_status(openai_server, provider, unique, status, expected):
    openai_server.script(unique, status=status, error_message="context too long")

    with pytest.raises(expected) as caught:
        list(provider.stream(_call(unique, openai_server.url)))

    assert type(caught.value) is expected
    assert caught.value.details["status"] == status


def test_validation_error_keeps_the_server_reason(openai_server, provider, unique):
    openai_server.script(unique, status=400, error_message="context length exceeded")

    with pytest.raises(ValidationError, match="context length exceeded"):
        list(provider.stream(_call(unique, openai_server.url)))


def test_connection_dropped_mid_stream_yields_chunks_then_unavailable(openai_server, provider, unique):
    openai_server.script(unique, chunks=["a", "b", "c"], fail_after=2)

    received: list = []
    with pytest.raises(ModelUnavailable):
        received.extend(provider.stream(_call(unique, openai_server.url)))  # keeps what arrived before the error

    assert received == [TextDelta("a"), TextDelta("b")]


def test_closed_port_is_unavailable(unique):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = OpenAICompatibleProvider(connect_timeout=0.5, read_timeout=0.5, environ={})

    with pytest.raises(ModelUnavailable, match="could not be reached"):
        list(provider.stream(_call(unique, f"http://127.0.0.1:{port}")))


def test_missing_endpoint_is_unavailable(provider, unique):
    with pytest.raises(ModelUnavailable, match="no endpoint"):
        list(provider.stream(_call(unique, "")))


def test_api_key_per_model_wins_over_the_shared_one(openai_server):
    model = "llama-3.1-8b"
    provider = OpenAICompatibleProvider(
        environ={"OPENAI_API_KEY": "shared", "OPENAI_API_KEY_LLAMA_3_1_8B": "per-model"}
    )

    list(provider.stream(_call(model, openai_server.url)))

    assert api_key_variable(model) == "OPENAI_API_KEY_LLAMA_3_1_8B"
    assert openai_server.last_request(model).headers["Authorization"] == "Bearer per-model"


def test_shared_api_key_and_no_key(openai_server, unique):
    list(OpenAICompatibleProvider(environ={"OPENAI_API_KEY": "shared"}).stream(_call(unique, openai_server.url)))
    assert openai_server.last_request(unique).headers["Authorization"] == "Bearer shared"

    list(OpenAICompatibleProvider(environ={}).stream(_call(unique, openai_server.url)))
    assert "Authorization" not in openai_server.last_request(unique).headers


def test_endpoint_with_v1_is_not_doubled():
    assert completions_path("http://h:8000") == "/v1/chat/completions"
    assert completions_path("http://h:8000/v1/") == "/v1/chat/completions"
    assert completions_path("https://h/openai") == "/openai/v1/chat/completions"


class _KeepingResponses(OpenAICompatibleProvider):
    """Holds every response it gets, so only an explicit close can end its connection
    (garbage collection of a dropped response would otherwise close the socket too)."""

    def __init__(self) -> None:
        super().__init__(environ={})
        self.responses: list = []

    def _post(self, call: ModelCall, url: str):
        response = super()._post(call, url)
        self.responses.append(response)
        return response


def test_closing_the_stream_early_stops_the_server_writing(openai_server, unique):
    total = 2000
    openai_server.script(unique, chunks=[f"w{i} " for i in range(total)], chunk_delay=0.005)
    provider = _KeepingResponses()
    stream = provider.stream(_call(unique, openai_server.url))

    first = [next(stream) for _ in range(3)]
    stream.close()

    assert first == [TextDelta("w0 "), TextDelta("w1 "), TextDelta("w2 ")]
    received = openai_server.last_request(unique)
    assert received.finished.wait(timeout=10), "the server kept streaming after the client closed"
    assert received.client_disconnected
    assert received.chunks_sent < total
    assert provider.responses  # held until here, so the close above came from the provider


def test_turns_to_one_endpoint_reuse_a_kept_alive_connection_but_never_a_cut_one(openai_server, provider, unique):
    openai_server.script(unique, chunks=["a", "b"], times=2)
    openai_server.script(unique, chunks=[f"w{i} " for i in range(500)], chunk_delay=0.005)
    list(provider.stream(_call(unique, openai_server.url)))
    list(provider.stream(_call(unique, openai_server.url)))
    cut = provider.stream(_call(unique, openai_server.url))
    next(cut)
    cut.close()
    list(provider.stream(_call(unique, openai_server.url)))

    ports = [received.client_port for received in openai_server.requests_for(unique)]
    assert ports[0] == ports[1] == ports[2]  # one TCP connection for three turns
    assert ports[3] != ports[2]  # the cut turn's connection was closed, not handed on


def test_server_sent_events_are_parsed_from_pieces_split_anywhere():
    pieces = [
        b'data: {"a"',
        b": 1}\r",
        b"\n\r\n: a comment\nevent: x\ndata: multi",
        b"\ndata: line \xc3",
        b"\xa9\n\n",
        b"data: [DONE]",
    ]
    assert list(_server_sent_data(pieces)) == ['{"a": 1}', "multi\nline \u00e9", "[DONE]"]



def test_a_urllib3_without_read1_is_read_through_stream():
    class OlderResponse:  # urllib3 1.x: no read1, stream() yields HTTP chunks as they come
        def stream(self, amount: int, decode_content: bool):
            assert decode_content is False
            yield from (b"data: a\n\n", b"data: [DONE]\n\n")

    assert list(_server_sent_data(_body_pieces(OlderResponse()))) == ["a", "[DONE]"]
