"""Which provider answers a model: `provider_for(model, config)`, by `model.provider`.

| `AllowedModel.provider` | adapter | built from |
| --- | --- | --- |
| `bedrock` | `BedrockProvider` | `config.region`, `config.bedrock_endpoint_url`, the `GATEWAY_BEDROCK_*` knobs |
| `openai` | `OpenAICompatibleProvider` | `model.endpoint` (API key from the environment, see its module) |
| `demo` | `DemoProvider` | `GATEWAY_DEMO_CHUNK_DELAY` seconds between chunks |

`provider_for` builds; the `Gateway` keeps what it built (`Gateway.provider_for`), the one
provider cache. Bedrock providers share their boto3 client through `dataplane.aws.client`.
"""
from __future__ import annotations

from dataplane.config import GatewayConfig
from dataplane.errors import ModelUnavailable
from dataplane.policy import AllowedModel
from dataplane.providers.base import ModelCall, Provider, ProviderEvent, StreamEnd, TextDelta
from dataplane.providers.bedrock import BedrockProvider, bedrock_client_settings
from dataplane.providers.demo import DEMO_MODEL_ID, DEMO_MODEL_NAME, DemoProvider
from dataplane.providers.openai_compatible import OpenAICompatibleProvider
from dataplane.settings_table import ConfigError

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


def provider_for(model: AllowedModel, config: GatewayConfig) -> Provider:
    try:
        if model.provider == "bedrock":
            return BedrockProvider(
                client_settings=bedrock_client_settings(
                    region=config.region,
                    endpoint_url=config.bedrock_endpoint_url or None,
                    connect_timeout=config.provider_knob("bedrock_connect_timeout"),
                    read_timeout=config.provider_knob("bedrock_read_timeout"),
                    max_attempts=int(config.provider_knob("bedrock_max_attempts")),
                )
            )
        if model.provider == "openai":
            return OpenAICompatibleProvider(endpoint=model.endpoint)
        if model.provider == "demo":
            return DemoProvider(chunk_delay=config.provider_knob("demo_chunk_delay"))
    except ConfigError as error:
        raise ModelUnavailable(f"The gateway's setting is wrong: {error}.", modelId=model.model_id) from None
    raise ModelUnavailable(
        f"Model {model.model_id} is unavailable: its provider {model.provider!r} is not one the gateway knows.",
        modelId=model.model_id,
    )
