"""The data plane's configuration, read from one mapping of names to strings.

The Lambda functions pass `os.environ`; Django passes its settings under the same names
(`gateway_project.gateway`). Bad values fail fast with a message naming the variable.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class GatewayConfig:
    store: str = "sqlite"  # sqlite | dynamodb
    sqlite_path: str = "var/dataplane.sqlite3"
    dynamodb_endpoint_url: str = ""
    policies_table: str = "gateway-policies"
    usage_table: str = "gateway-usage"
    cache_table: str = "gateway-cache"
    region: str = "us-east-1"
    month_timezone: str = "UTC"
    cache_ttl_seconds: int = 24 * 3600
    policy_cache_seconds: float = 5.0
    telemetry_sinks: tuple[str, ...] = ("stdout",)
    lake_dir: str = "var/lake"
    firehose_stream: str = ""
    metrics_namespace: str = "AIGateway"
    bedrock_endpoint_url: str = ""
    events_http_endpoint: str = ""  # AppSync Events HTTP endpoint, https://<dns>/event
    max_message_chars: int = 100_000
    max_messages: int = 200
    max_request_bytes: int = 240_000  # AppSync Events caps one event at 240 KB
    # The stack's default Bedrock guardrail (CDK sets both); a policy that picks "the stack's
    # default" applies it, and gets none where the deployment has none (embedded default).
    guardrail_id: str = ""
    guardrail_version: str = ""
    # Provider knobs (demo_chunk_delay, bedrock_*_timeout, ...); kept out of the hash so a
    # config can key the per-process gateway cache.
    extra: dict = field(default_factory=dict, hash=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> GatewayConfig:
        def text(name: str, default: str) -> str:
            value = values.get(name)
            return default if value in (None, "") else str(value)

        def number(name: str, default: float, kind: type = int) -> float:
            raw = values.get(name)
            if raw in (None, ""):
                return default
            try:
                parsed = kind(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if parsed < 0:
                raise ConfigError(f"{name} must not be negative, got {raw!r}")
            return parsed

        store = text("GATEWAY_STORE", "sqlite")
        if store not in ("sqlite", "dynamodb"):
            raise ConfigError(f"GATEWAY_STORE must be 'sqlite' or 'dynamodb', got {store!r}")
        month_timezone = text("GATEWAY_MONTH_TIMEZONE", "UTC")
        try:
            ZoneInfo(month_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"GATEWAY_MONTH_TIMEZONE is not a known time zone: {month_timezone!r}") from None
        sinks = tuple(s.strip() for s in text("GATEWAY_TELEMETRY_SINK", "stdout").split(",") if s.strip())
        unknown = set(sinks) - {"stdout", "lake", "firehose", "none"}
        if unknown:
            raise ConfigError(f"GATEWAY_TELEMETRY_SINK has unknown sinks: {', '.join(sorted(unknown))}")
        if "firehose" in sinks and not text("GATEWAY_FIREHOSE_STREAM", ""):
            raise ConfigError("GATEWAY_TELEMETRY_SINK includes firehose but GATEWAY_FIREHOSE_STREAM is empty")
        return cls(
            store=store,
            sqlite_path=text("GATEWAY_SQLITE_PATH", cls.sqlite_path),
            dynamodb_endpoint_url=text("GATEWAY_DYNAMODB_ENDPOINT_URL", ""),
            policies_table=text("GATEWAY_POLICIES_TABLE", cls.policies_table),
            usage_table=text("GATEWAY_USAGE_TABLE", cls.usage_table),
            cache_table=text("GATEWAY_CACHE_TABLE", cls.cache_table),
            region=text("AWS_REGION", text("AWS_DEFAULT_REGION", cls.region)),
            month_timezone=month_timezone,
            cache_ttl_seconds=int(number("GATEWAY_CACHE_TTL_SECONDS", cls.cache_ttl_seconds)),
            policy_cache_seconds=float(number("GATEWAY_POLICY_CACHE_SECONDS", cls.policy_cache_seconds, float)),
            telemetry_sinks=tuple(s for s in sinks if s != "none"),
            lake_dir=text("GATEWAY_LAKE_DIR", cls.lake_dir),
            firehose_stream=text("GATEWAY_FIREHOSE_STREAM", ""),
            metrics_namespace=text("GATEWAY_METRICS_NAMESPACE", cls.metrics_namespace),
            bedrock_endpoint_url=text("GATEWAY_BEDROCK_ENDPOINT_URL", ""),
            events_http_endpoint=text("GATEWAY_EVENTS_HTTP_ENDPOINT", ""),
            guardrail_id=text("GATEWAY_GUARDRAIL_ID", ""),
            guardrail_version=text("GATEWAY_GUARDRAIL_VERSION", ""),
            extra={
                name.lower().removeprefix("gateway_"): str(values[name])
                for name in ("GATEWAY_DEMO_CHUNK_DELAY", "GATEWAY_BEDROCK_READ_TIMEOUT", "GATEWAY_BEDROCK_MAX_ATTEMPTS")
                if values.get(name) not in (None, "")
            },
        )

    @classmethod
    def from_environ(cls) -> GatewayConfig:
        return cls.from_mapping(os.environ)
