"""The local Bedrock server speaks the wire protocol boto3's own parser expects."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EventStreamError

from tests.servers.bedrock import iter_text


def _ask(client, model_id: str, text: str = "Hello there"):
    return client.converse_stream(modelId=model_id, messages=[{"role": "user", "content": [{"text": text}]}])


def test_boto3_decodes_the_scripted_stream(bedrock_server, bedrock_client, unique):
    model_id = f"anthropic.{unique}-v1:0"
    bedrock_server.script(model_id, chunks=["Hel", "lo", " world"], usage=(11, 3), stop_reason="max_tokens")

    events = list(_ask(bedrock_client, model_id)["stream"])

    assert [next(iter(e)) for e in events] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
        "contentBlockStop", "messageStop", "metadata",
    ]
    assert "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e) == "Hello world"
    assert events[5]["messageStop"]["stopReason"] == "max_tokens"
    assert events[6]["metadata"]["usage"] == {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14}


def test_unscripted_model_echoes_with_honest_counts(bedrock_server, bedrock_client, unique):
    from dataplane import tokens

    model_id = f"amazon.{unique}-v1:0"
    response = _ask(bedrock_client, model_id, "안녕하세요 gateway")
    events = list(response["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)

    assert text == "Echo: 안녕하세요 gateway"
    usage = events[-1]["metadata"]["usage"]
    assert usage["outputTokens"] == tokens.estimate(text)
    assert usage["inputTokens"] == tokens.estimate_messages(bedrock_server.last_request(model_id).messages)


def test_exception_event_mid_stream_raises_event_stream_error(bedrock_server, bedrock_client, unique):
    bedrock_server.script(unique, chunks=["a", "b", "c"], fail_after=2, error_code="throttlingException")

    received = []
    with pytest.raises(EventStreamError) as caught:
        received.extend(iter_text(_ask(bedrock_client, unique)))

    assert received == ["a", "b"]
    assert caught.value.response["Error"]["Code"] == "throttlingException"


def test_http_error_before_the_stream_carries_the_error_type(bedrock_server, bedrock_client, unique):
    bedrock_server.script(unique, status=424)

    with pytest.raises(ClientError) as caught:
        _ask(bedrock_client, unique)

    assert caught.value.response["Error"]["Code"] == "ModelNotReadyException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_script_with_times_answers_that_many_requests(bedrock_server, bedrock_client, unique):
    bedrock_server.script(unique, status=503, times=1)

    with pytest.raises(ClientError):
        _ask(bedrock_client, unique)
    assert "".join(iter_text(_ask(bedrock_client, unique, "again"))) == "Echo: again"
