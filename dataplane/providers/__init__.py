"""Which provider answers a model: `provider_for(model, config)`, by `model.provider`.

| `AllowedModel.provider` | adapter | built from |
| --- | --- | --- |
| `bedrock` | `BedrockProvider` | `config.region`, `config.bedrock_endpoint_url`; `config.extra` knobs (below) |
| `openai` | `OpenAICompatibleProvider` | `model.endpoint` (API key from the environment, see its module) |
| `demo` | `DemoProvider` | `config.extra["demo_chunk_delay"]` seconds between chunks (default 0.02) |

The optional Bedrock knobs in `config.extra` are `bedrock_connect_timeout`,
`bedrock_read_timeout` and `bedrock_max_attempts`.

Bedrock providers are cached per configuration: a boto3 client is costly to build and
thread-safe to share. The others are cheap and stateless.
"""
from __future__ import annotations

import threading

from dataplane.config import GatewayConfig
from dataplane.errors import ModelUnavailable
from dataplane.policy import AllowedModel
from dataplane.providers.base import ModelCall, Provider, ProviderEvent, StreamEnd, TextDelta
from dataplane.providers.bedrock import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    BedrockProvider,
    default_client_config,
)
from dataplane.providers.demo import DEFAULT_CHUNK_DELAY_SECONDS, DEMO_MODEL_ID, DEMO_MODEL_NAME, DemoProvider
from dataplane.providers.openai_compatible import OpenAICompatibleProvider

__all__ = [
    "DEMO_MODEL_ID",
    "DEMO_MODEL_NAME",
    "BedrockProvider",
    "DemoProvider",
    "ModelCall",
    "OpenAICompatibleProvider",
    "Provider",
    "ProviderEvent",
    "StreamEnd",
    "TextDelta",
    "provider_for",
]

_bedrock_providers: dict[tuple, BedrockProvider] = {}
_bedrock_lock = threading.Lock()


def provider_for(model: AllowedModel, config: GatewayConfig) -> Provider:
    if model.provider == "bedrock":
        return _bedrock_provider(config)
    if model.provider == "openai":
        return OpenAICompatibleProvider(endpoint=model.endpoint)
    if model.provider == "demo":
        return DemoProvider(chunk_delay=_number(config, "demo_chunk_delay", DEFAULT_CHUNK_DELAY_SECONDS))
    raise ModelUnavailable(
        f"Model {model.model_id} is unavailable: its provider {model.provider!r} is not one the gateway knows.",
        modelId=model.model_id,
    )


def _bedrock_provider(config: GatewayConfig) -> BedrockProvider:
    connect_timeout = _number(config, "bedrock_connect_timeout", CONNECT_TIMEOUT_SECONDS)
    read_timeout = _number(config, "bedrock_read_timeout", READ_TIMEOUT_SECONDS)
    max_attempts = int(_number(config, "bedrock_max_attempts", MAX_ATTEMPTS))
    key = (config.region, config.bedrock_endpoint_url, connect_timeout, read_timeout, max_attempts)
    with _bedrock_lock:
        provider = _bedrock_providers.get(key)
        if provider is None:
            provider = BedrockProvider(
                region=config.region,
                endpoint_url=config.bedrock_endpoint_url or None,
                client_config=default_client_config(
                    connect_timeout=connect_timeout, read_timeout=read_timeout, max_attempts=max_attempts
                ),
            )
            _bedrock_providers[key] = provider
        return provider


def _number(config: GatewayConfig, name: str, default: float) -> float:
    raw = config.extra.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ModelUnavailable(f"The gateway's setting {name} must be a number, got {raw!r}.") from None
