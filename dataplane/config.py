"""The data plane's configuration, read from one mapping of names to strings.

The Lambda functions pass `os.environ`; Django passes its settings under the same names
(`gateway_project.gateway`). Names, types and defaults come from `dataplane.settings_table`;
bad values fail fast with a message naming the variable.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dataplane.channels import MAX_EVENT_BYTES
from dataplane.settings_table import DATA_PLANE_BY_NAME, ConfigError, default_of, value_of

__all__ = ["ConfigError", "GatewayConfig"]

TELEMETRY_SINKS = ("stdout", "lake", "firehose", "none")
STORES = ("sqlite", "dynamodb")
# Provider knobs, kept in `GatewayConfig.extra` by their short names (`demo_chunk_delay`, ...).
_PROVIDER_KNOBS = (
    "GATEWAY_DEMO_CHUNK_DELAY",
    "GATEWAY_BEDROCK_CONNECT_TIMEOUT",
    "GATEWAY_BEDROCK_READ_TIMEOUT",
    "GATEWAY_BEDROCK_MAX_ATTEMPTS",
)


@dataclass(frozen=True)
class GatewayConfig:
    store: str = default_of("GATEWAY_STORE")  # sqlite | dynamodb
    sqlite_path: str = default_of("GATEWAY_SQLITE_PATH")
    dynamodb_endpoint_url: str = default_of("GATEWAY_DYNAMODB_ENDPOINT_URL")
    policies_table: str = default_of("GATEWAY_POLICIES_TABLE")
    usage_table: str = default_of("GATEWAY_USAGE_TABLE")
    cache_table: str = default_of("GATEWAY_CACHE_TABLE")
    region: str = default_of("AWS_REGION")
    month_timezone: str = default_of("GATEWAY_MONTH_TIMEZONE")
    cache_ttl_seconds: int = default_of("GATEWAY_CACHE_TTL_SECONDS")
    policy_cache_seconds: float = default_of("GATEWAY_POLICY_CACHE_SECONDS")
    telemetry_sinks: tuple[str, ...] = default_of("GATEWAY_TELEMETRY_SINK")
    lake_dir: str = default_of("GATEWAY_LAKE_DIR")
    firehose_stream: str = default_of("GATEWAY_FIREHOSE_STREAM")
    metrics_namespace: str = default_of("GATEWAY_METRICS_NAMESPACE")
    bedrock_endpoint_url: str = default_of("GATEWAY_BEDROCK_ENDPOINT_URL")
    events_http_endpoint: str = default_of("GATEWAY_EVENTS_HTTP_ENDPOINT")  # https://<dns>/event
    max_message_chars: int = 100_000
    max_messages: int = 200
    max_request_bytes: int = MAX_EVENT_BYTES
    # The stack's default Bedrock guardrail (CDK sets both); a policy that picks "the stack's
    # default" applies it, and gets none where the deployment has none (embedded default).
    guardrail_id: str = default_of("GATEWAY_GUARDRAIL_ID")
    guardrail_version: str = default_of("GATEWAY_GUARDRAIL_VERSION")
    # Provider knobs (demo_chunk_delay, bedrock_*_timeout, ...) when set; kept out of the hash
    # so a config can key the per-process gateway cache.
    extra: dict = field(default_factory=dict, hash=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GatewayConfig:
        def get(name: str) -> Any:
            return value_of(DATA_PLANE_BY_NAME[name], values)

        store = get("GATEWAY_STORE")
        if store not in STORES:
            raise ConfigError(f"GATEWAY_STORE must be 'sqlite' or 'dynamodb', got {store!r}")
        month_timezone = get("GATEWAY_MONTH_TIMEZONE")
        try:
            ZoneInfo(month_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"GATEWAY_MONTH_TIMEZONE is not a known time zone: {month_timezone!r}") from None
        sinks = tuple(get("GATEWAY_TELEMETRY_SINK"))
        unknown = set(sinks) - set(TELEMETRY_SINKS)
        if unknown:
            raise ConfigError(f"GATEWAY_TELEMETRY_SINK has unknown sinks: {', '.join(sorted(unknown))}")
        if "firehose" in sinks and not get("GATEWAY_FIREHOSE_STREAM"):
            raise ConfigError("GATEWAY_TELEMETRY_SINK includes firehose but GATEWAY_FIREHOSE_STREAM is empty")
        # Lambda sets AWS_REGION; elsewhere boto3's AWS_DEFAULT_REGION may be all there is.
        region_values = values if values.get("AWS_REGION") else {"AWS_REGION": values.get("AWS_DEFAULT_REGION")}
        return cls(
            store=store,
            sqlite_path=get("GATEWAY_SQLITE_PATH"),
            dynamodb_endpoint_url=get("GATEWAY_DYNAMODB_ENDPOINT_URL"),
            policies_table=get("GATEWAY_POLICIES_TABLE"),
            usage_table=get("GATEWAY_USAGE_TABLE"),
            cache_table=get("GATEWAY_CACHE_TABLE"),
            region=value_of(DATA_PLANE_BY_NAME["AWS_REGION"], region_values),
            month_timezone=month_timezone,
            cache_ttl_seconds=get("GATEWAY_CACHE_TTL_SECONDS"),
            policy_cache_seconds=get("GATEWAY_POLICY_CACHE_SECONDS"),
            telemetry_sinks=tuple(s for s in sinks if s != "none"),
            lake_dir=get("GATEWAY_LAKE_DIR"),
            firehose_stream=get("GATEWAY_FIREHOSE_STREAM"),
            metrics_namespace=get("GATEWAY_METRICS_NAMESPACE"),
            bedrock_endpoint_url=get("GATEWAY_BEDROCK_ENDPOINT_URL"),
            events_http_endpoint=get("GATEWAY_EVENTS_HTTP_ENDPOINT"),
            guardrail_id=get("GATEWAY_GUARDRAIL_ID"),
            guardrail_version=get("GATEWAY_GUARDRAIL_VERSION"),
            extra={
                name.lower().removeprefix("gateway_"): get(name)
                for name in _PROVIDER_KNOBS
                if values.get(name) not in (None, "")
            },
        )

    @classmethod
    def from_environ(cls) -> GatewayConfig:
        return cls.from_mapping(os.environ)

    def provider_knob(self, name: str) -> float:
        """A provider knob (`demo_chunk_delay`, `bedrock_read_timeout`, ...): the value in
        `extra` when one was given, else the settings table's default."""
        setting = DATA_PLANE_BY_NAME["GATEWAY_" + name.upper()]
        raw = self.extra.get(name)
        return float(setting.default if raw in (None, "") else value_of(setting, {setting.name: raw}))
