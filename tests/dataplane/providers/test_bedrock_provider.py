"""BedrockProvider through boto3's real event-stream parser against the local Bedrock server."""
from __future__ import annotations

import socket

import pytest

from dataplane.errors import ModelThrottled, ModelUnavailable, UpstreamError, ValidationError
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta
from dataplane.providers.bedrock import BedrockProvider, bedrock_client_settings, error_for_code


def _call(model_id: str, text: str = "Hello", **kwargs) -> ModelCall:
    return ModelCall(model_id=model_id, messages=[{"role": "user", "content": [{"text": text}]}], **kwargs)


@pytest.fixture
def provider(bedrock_client) -> BedrockProvider:
    return BedrockProvider(client=bedrock_client)


def test_text_streams_in_order_then_usage(bedrock_server, provider, unique):
    model_id = f"anthropic.claude-3-5-haiku-{unique}-v1:0"
    bedrock_server.script(model_id, chunks=["The ", "answer ", "is 42."], usage=(17, 6), stop_reason="end_turn")

    events = list(provider.stream(_call(model_id)))

    assert events[:3] == [TextDelta("The "), TextDelta("answer "), TextDelta("is 42.")]
    assert len(events) == 4
    end = events[3]
    assert (end.stop_reason, end.input_tokens, end.output_tokens, end.latency_ms) == ("end_turn", 17, 6, 42)


def test_stop_reason_is_passed_on(bedrock_server, provider, unique):
    bedrock_server.script(unique, chunks=["cut"], stop_reason="max_tokens")

    *_, end = provider.stream(_call(unique))

    assert end.stop_reason == "max_tokens"


def test_missing_usage_gives_a_stream_end_without_counts(bedrock_server, provider, unique):
    bedrock_server.script(unique, chunks=["no usage"], send_usage=False)

    events = list(provider.stream(_call(unique)))

    assert events == [TextDelta("no usage"), StreamEnd(stop_reason="end_turn")]


@pytest.mark.parametrize(
    "model_id",
    [
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "global.anthropic.claude-sonnet-4-20250514-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:imported-model/k2x7abcd1234",
        "arn:aws:bedrock:eu-west-1:123456789012:provisioned-model/a1b2c3d4e5",
    ],
)
def test_model_ids_reach_the_right_path_unchanged(bedrock_server, provider, model_id):
    # The session's server keeps earlier tests' requests for these fixed ids: count, then look.
    before = len(bedrock_server.requests_for(model_id))
    events = list(provider.stream(_call(model_id, "route me")))

    assert events[-1].stop_reason == "end_turn"
    assert len(bedrock_server.requests_for(model_id)) == before + 1
    received = bedrock_server.last_request(model_id)
    assert received.model_id == model_id
    encoded = model_id.replace(":", "%3A").replace("/", "%2F")
    assert received.path == f"/model/{encoded}/converse-stream"


def test_system_and_inference_config_are_sent(bedrock_server, provider, unique):
    call = ModelCall(
        model_id=unique,
        messages=[
            {"role": "user", "content": [{"text": "first"}]},
            {"role": "assistant", "content": [{"text": "reply"}]},
            {"role": "user", "content": "plain string content"},
        ],
        system="You are terse.",
        max_tokens=321,
        temperature=0.2,
        top_p=0.9,
        stop_sequences=("END",),
    )

    list(provider.stream(call))

    received = bedrock_server.last_request(unique)
    assert received.system == [{"text": "You are terse."}]
    assert received.inference_config == {"maxTokens": 321, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}
    assert received.messages[-1] == {"role": "user", "content": [{"text": "plain string content"}]}
    assert [m["role"] for m in received.messages] == ["user", "assistant", "user"]


def test_optional_inference_parameters_are_left_out(bedrock_server, provider, unique):
    list(provider.stream(_call(unique, max_tokens=64)))

    received = bedrock_server.last_request(unique)
    assert received.inference_config == {"maxTokens": 64}
    assert received.system is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ModelThrottled),
        (400, ValidationError),
        (403, ModelUnavailable),
        (404, ModelUnavailable),
        (424, ModelUnavailable),
        (503, ModelUnavailable),
        (500, UpstreamError),
    ],
)
def test_errors_at_call_start_are_mapped_by_code(bedrock_server, provider, unique, status, expected):
    bedrock_server.script(unique, status=status)

    with pytest.raises(expected) as caught:
        list(provider.stream(_call(unique)))

    assert type(caught.value) is expected
    assert caught.value.details["modelId"] == unique


def test_access_denied_says_the_gateway_lacks_access(bedrock_server, provider, unique):
    bedrock_server.script(unique, status=403)

    with pytest.raises(ModelUnavailable, match="gateway's AWS role lacks access"):
        list(provider.stream(_call(unique)))


def test_validation_error_keeps_bedrock_reason(bedrock_server, provider, unique):
    bedrock_server.script(unique, status=400)

    with pytest.raises(ValidationError, match="scripted ValidationException"):
        list(provider.stream(_call(unique)))


def test_service_quota_is_throttling_by_code(bedrock_server, provider, unique):
    bedrock_server.script(unique, status=400, error_code="ServiceQuotaExceededException")

    with pytest.raises(ModelThrottled):
        list(provider.stream(_call(unique)))


def test_mid_stream_throttling_yields_the_chunks_then_raises(bedrock_server, provider, unique):
    bedrock_server.script(
        unique, chunks=["one ", "two ", "three ", "four"], fail_after=2, error_code="throttlingException"
    )

    received: list = []
    with pytest.raises(ModelThrottled):
        received.extend(provider.stream(_call(unique)))  # keeps what arrived before the error

    assert received == [TextDelta("one "), TextDelta("two ")]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("modelStreamErrorException", ModelUnavailable),
        ("serviceUnavailableException", ModelUnavailable),
        ("validationException", ValidationError),
        ("internalServerException", UpstreamError),
    ],
)
def test_mid_stream_exceptions_are_mapped_by_code(bedrock_server, provider, unique, code, expected):
    bedrock_server.script(unique, chunks=["a", "b"], fail_after=1, error_code=code)

    with pytest.raises(expected) as caught:
        list(provider.stream(_call(unique)))

    assert type(caught.value) is expected


def test_a_dropped_connection_mid_stream_is_unavailable(bedrock_server, provider, unique):
    bedrock_server.script(unique, chunks=["a", "b", "c"], fail_after=2)

    received: list = []
    with pytest.raises(ModelUnavailable):
        received.extend(provider.stream(_call(unique)))  # keeps what arrived before the error

    assert received == [TextDelta("a"), TextDelta("b")]


def test_closed_port_is_unavailable(aws_test_credentials):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = BedrockProvider(
        client_settings=bedrock_client_settings(
            endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=0.5, read_timeout=0.5, max_attempts=1
        ),
    )

    with pytest.raises(ModelUnavailable, match="could not be reached"):
        list(provider.stream(_call("anthropic.claude-3-5-haiku-20241022-v1:0")))


def test_builds_its_own_client_lazily_with_explicit_timeouts(bedrock_server, aws_test_credentials, unique):
    settings = bedrock_client_settings(region="eu-west-1", endpoint_url=bedrock_server.url)
    provider = BedrockProvider(client_settings=settings)

    client = provider.client

    assert provider.client is client  # created once, then shared
    assert client.meta.region_name == "eu-west-1"
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (5.0, 60.0)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert next(iter(provider.stream(_call(unique, "hi")))) == TextDelta("Echo:")


class _CapturingClient:
    """Hands out the real boto3 client's responses, keeping them, so the test holds the
    HTTP response alive: only an explicit close can end the connection."""

    def __init__(self, client) -> None:
        self._client = client
        self.responses: list[dict] = []

    def converse_stream(self, **kwargs):
        response = self._client.converse_stream(**kwargs)
        self.responses.append(response)
        return response


def test_closing_the_stream_early_stops_the_server_writing(bedrock_server, bedrock_client, unique):
    total = 2000
    bedrock_server.script(unique, chunks=[f"w{i} " for i in range(total)], chunk_delay=0.005)
    capturing = _CapturingClient(bedrock_client)
    stream = BedrockProvider(client=capturing).stream(_call(unique))

    first = [next(stream) for _ in range(3)]
    stream.close()

    assert first == [TextDelta("w0 "), TextDelta("w1 "), TextDelta("w2 ")]
    received = bedrock_server.last_request(unique)
    assert received.finished.wait(timeout=10), "the server kept streaming after the client closed"
    assert received.client_disconnected
    assert received.chunks_sent < total
    assert capturing.responses  # held until here, so the close above came from the provider


def test_unknown_codes_are_upstream_errors():
    assert type(error_for_code("m", "SomethingNewException")) is UpstreamError
    assert type(error_for_code("m", "")) is UpstreamError
    assert type(error_for_code("m", "ModelErrorException")) is UpstreamError
    assert type(error_for_code("m", "ModelTimeoutException")) is ModelUnavailable


def test_a_request_boto3_refuses_is_a_validation_error(provider):
    call = _call("anthropic.claude-3-5-haiku-20241022-v1:0", max_tokens=0)  # Converse needs >= 1

    with pytest.raises(ValidationError, match="maxTokens"):
        list(provider.stream(call))
