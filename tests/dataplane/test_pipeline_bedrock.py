"""A chat turn through the real Bedrock provider and boto3's event-stream parser, against the
local server that speaks ConverseStream's binary framing."""
from __future__ import annotations

from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn
from tests.dataplane.conftest import ALICE, MODEL, chat_request
from tests.dataplane.test_pipeline import usage_of

alice = Identity(sub=ALICE)


def turn(gateway, payload, outbound=None):
    outbound = outbound or ListOutbound()
    record = chat_turn(gateway=gateway, identity=alice, channel=f"/inbound/{ALICE}", payload=payload, outbound=outbound)
    return record, outbound


def test_text_streams_in_order_and_usage_settles_to_the_reported_figures(bedrock_gateway, bedrock_server):
    chunks = ["Tokens ", "are ", "pieces ", "of ", "text."]
    bedrock_server.script(MODEL, chunks=chunks, usage=(21, 9))

    record, out = turn(
        bedrock_gateway, chat_request(system="Be brief.", inferenceConfig={"maxTokens": 50, "temperature": 0.1})
    )

    deltas = [e["contentBlockDelta"]["delta"]["text"] for e in out.events if "contentBlockDelta" in e]
    assert deltas == chunks
    assert out.events[-1]["metadata"]["usage"] == {"inputTokens": 21, "outputTokens": 9, "totalTokens": 30}
    assert (record.input_tokens, record.output_tokens, record.estimated_usage) == (21, 9, False)
    usage = usage_of(bedrock_gateway)["10m"]
    assert (usage.total, usage.reserved) == (30, 0)
    sent = bedrock_server.last_request(MODEL)
    assert sent.system == [{"text": "Be brief."}]
    assert sent.inference_config["maxTokens"] == 50


def test_a_mid_stream_throttle_gives_the_typed_error_and_bills_the_streamed_part(bedrock_gateway, bedrock_server):
    bedrock_server.script(
        MODEL, chunks=["one ", "two ", "three ", "four "], fail_after=2, error_code="throttlingException"
    )

    record, out = turn(bedrock_gateway, chat_request())

    assert out.texts() == "one two "
    [error] = out.errors()
    assert error["type"] == "ModelThrottled"
    assert record.estimated_usage
    assert record.output_tokens > 0
    usage = usage_of(bedrock_gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens


def test_a_throttle_before_the_stream_bills_nothing(bedrock_gateway, bedrock_server):
    bedrock_server.script(MODEL, status=429, error_code="ThrottlingException")

    _record, out = turn(bedrock_gateway, chat_request())

    assert out.errors()[0]["type"] == "ModelThrottled"
    usage = usage_of(bedrock_gateway)["10m"]
    assert (usage.total, usage.reserved) == (0, 0)


def test_a_disconnect_half_way_bills_the_streamed_part_and_stops_reading(bedrock_gateway, bedrock_server):
    bedrock_server.script(MODEL, chunks=[f"w{i} " for i in range(40)], chunk_delay=0.005)

    record, _out = turn(bedrock_gateway, chat_request(), outbound=ListOutbound(gone_after=4))

    assert record.outcome == "cancelled"
    assert record.output_tokens > 0
    assert record.estimated_usage
    usage = usage_of(bedrock_gateway)["10m"]
    assert usage.reserved == 0
    assert usage.total == record.total_tokens
    sent = bedrock_server.last_request(MODEL)
    assert sent.finished.wait(5)
    assert sent.chunks_sent < 40
