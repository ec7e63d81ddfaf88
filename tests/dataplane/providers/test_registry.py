"""`provider_for` picks the adapter by the catalogue's provider name."""
from __future__ import annotations

import pytest

from dataplane.config import GatewayConfig
from dataplane.errors import ModelUnavailable
from dataplane.policy import AllowedModel
from dataplane.providers import (
    BedrockProvider,
    DemoProvider,
    OpenAICompatibleProvider,
    provider_for,
)
from dataplane.providers.base import ModelCall, StreamEnd, TextDelta


def test_demo_model_uses_the_configured_delay():
    model = AllowedModel(model_id="demo.echo-v1", display_name="Demo (offline)", provider="demo")

    assert provider_for(model, GatewayConfig(extra={"demo_chunk_delay": "0"})).chunk_delay == 0
    default = provider_for(model, GatewayConfig())
    assert isinstance(default, DemoProvider)
    assert default.chunk_delay == 0.02
    assert default.name == "Demo (offline)"


def test_openai_model_carries_its_endpoint():
    model = AllowedModel(model_id="llama", display_name="Llama", provider="openai", endpoint="http://10.0.0.5:8000")

    provider = provider_for(model, GatewayConfig())

    assert isinstance(provider, OpenAICompatibleProvider)
    assert provider.endpoint == "http://10.0.0.5:8000"


def test_bedrock_provider_is_shared_per_configuration():
    model = AllowedModel(model_id="anthropic.claude-3-5-haiku-20241022-v1:0", display_name="Haiku", provider="bedrock")
    config = GatewayConfig(region="eu-central-1", bedrock_endpoint_url="http://127.0.0.1:9")

    first = provider_for(model, config)

    assert isinstance(first, BedrockProvider)
    assert (first.region, first.endpoint_url) == ("eu-central-1", "http://127.0.0.1:9")
    assert provider_for(model, GatewayConfig(region="eu-central-1", bedrock_endpoint_url="http://127.0.0.1:9")) is first
    assert provider_for(model, GatewayConfig(region="us-west-2")) is not first


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
