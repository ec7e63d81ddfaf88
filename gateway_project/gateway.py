"""Django's door into the data plane: one place that turns settings into a `Gateway`.

Settings are read at call time (so `override_settings` works) and the built gateway is cached
per distinct configuration, so the store's connections and the policy cache are shared by
every request in the process.
"""
from __future__ import annotations

import threading

from django.conf import settings

from dataplane.config import GatewayConfig

_SETTING_NAMES = (
    "GATEWAY_STORE",
    "GATEWAY_SQLITE_PATH",
    "GATEWAY_DYNAMODB_ENDPOINT_URL",
    "GATEWAY_POLICIES_TABLE",
    "GATEWAY_USAGE_TABLE",
    "GATEWAY_CACHE_TABLE",
    "AWS_REGION",
    "GATEWAY_MONTH_TIMEZONE",
    "GATEWAY_CACHE_TTL_SECONDS",
    "GATEWAY_POLICY_CACHE_SECONDS",
    "GATEWAY_TELEMETRY_SINK",
    "GATEWAY_LAKE_DIR",
    "GATEWAY_FIREHOSE_STREAM",
    "GATEWAY_METRICS_NAMESPACE",
    "GATEWAY_BEDROCK_ENDPOINT_URL",
    "GATEWAY_DEMO_CHUNK_DELAY",
    "GATEWAY_BEDROCK_READ_TIMEOUT",
    "GATEWAY_BEDROCK_MAX_ATTEMPTS",
    "GATEWAY_GUARDRAIL_ID",
    "GATEWAY_GUARDRAIL_VERSION",
)

_lock = threading.Lock()
_gateways: dict[GatewayConfig, object] = {}


def gateway_config() -> GatewayConfig:
    return GatewayConfig.from_mapping({name: getattr(settings, name, "") for name in _SETTING_NAMES})


def gateway():
    """The process-wide `dataplane.gateway.Gateway` for the current settings."""
    from dataplane.gateway import Gateway

    config = gateway_config()
    with _lock:
        built = _gateways.get(config)
        if built is None:
            built = _gateways[config] = Gateway.from_config(config)
        return built


def gateway_store():
    """The data-plane store (SQLite or DynamoDB) the control plane publishes policies to."""
    return gateway().store
