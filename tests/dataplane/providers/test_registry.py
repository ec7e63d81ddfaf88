"""`provider_for` picks the adapter by the catalogue's provider name."""
from __future__ import annotations

import pytest

from dataplane.config import GatewayConfig
from dataplane.errors import ModelUnavailable
from dataplane.gateway import Gateway
from dataplane.policy import AllowedModel
from dataplane.providers import (
    DEMO_MODEL_ID,
    DEMO_MODEL_NAME,
    BedrockProvider,
    DemoProvider,
    OpenAICompatibleProvider,
    provider_for,
)
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta


def test_demo_model_uses_the_configured_delay():
    model = AllowedModel(model_id=DEMO_MODEL_ID, display_name=DEMO_MODEL_NAME, provider="demo")

    assert provider_for(model, GatewayConfig(extra={"demo_chunk_delay": "0"})).chunk_delay == 0
    default = provider_for(model, GatewayConfig())
    assert isinstance(default, DemoProvider)
    assert default.chunk_delay == 0.02
    assert default.name == "Demo (offline)"


def test_openai_model_carries_its_endpoint(openai_server, unique):
    model = AllowedModel(model_id=unique, display_name="Llama", provider="openai", endpoint=openai_server.url)
    openai_server.script(unique, chunks=["from ", "the catalogue's endpoint"], usage=(4, 2))

    provider = provider_for(model, GatewayConfig())
    # The call names no endpoint: the answer can only come from the one the catalogue gave.
    events = list(provider.stream(ModelCall(model_id=unique, messages=[{"role": "user", "content": [{"text": "hi"}]}])))

    assert isinstance(provider, OpenAICompatibleProvider)
    assert events == [TextDelta("from "), TextDelta("the catalogue's endpoint"),
                      StreamEnd(stop_reason="end_turn", input_tokens=4, output_tokens=2)]


def test_bedrock_providers_share_one_client_per_configuration(aws_test_credentials):
    haiku = AllowedModel(model_id="anthropic.claude-3-5-haiku-20241022-v1:0", display_name="Haiku", provider="bedrock")
    nova = AllowedModel(model_id="us.amazon.nova-pro-v1:0", display_name="Nova", provider="bedrock")
    config = GatewayConfig(region="eu-central-1", bedrock_endpoint_url="http://127.0.0.1:9")
    gateway = Gateway(config=config, store=None, telemetry=None, provider_factory=provider_for)

    first = gateway.provider_for(haiku)

    assert isinstance(first, BedrockProvider)
    assert (first.region, first.endpoint_url) == ("eu-central-1", "http://127.0.0.1:9")
    assert gateway.provider_for(haiku) is first  # the gateway keeps what it built
    assert gateway.provider_for(nova).client is first.client  # one boto3 client per settings
    other = provider_for(haiku, GatewayConfig(region="us-west-2"))
    assert other.client is not first.client
    assert other.client.meta.region_name == "us-west-2"


def test_bedrock_through_the_registry_reaches_the_local_server(bedrock_server, aws_test_credentials, unique):
    model = AllowedModel(model_id=f"us.anthropic.{unique}-v1:0", display_name="Haiku", provider="bedrock")
    config = GatewayConfig(bedrock_endpoint_url=bedrock_server.url, extra={"bedrock_max_attempts": "1"})
    bedrock_server.script(model.model_id, chunks=["ok"], usage=(3, 1))

    events = list(provider_for(model, config).stream(ModelCall(model_id=model.model_id, messages=[
        {"role": "user", "content": [{"text": "hi"}]}])))

    assert events == [
        TextDelta("ok"),
        StreamEnd(stop_reason="end_turn", input_tokens=3, output_tokens=1, latency_ms=42),
    ]


def test_unknown_provider_is_unavailable():
    model = AllowedModel(model_id="x", display_name="X", provider="carrier-pigeon")

    with pytest.raises(ModelUnavailable, match="carrier-pigeon"):
        provider_for(model, GatewayConfig())
