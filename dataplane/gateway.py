"""The `Gateway`: the data plane's adapters, built once per process from a `GatewayConfig`.

Both doors build one: the Lambda handler at cold start from `os.environ`, Django from its
settings (`gateway_project.gateway`). Tests build one with in-memory parts.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dataplane.config import GatewayConfig
from dataplane.policy import AllowedModel, EffectivePolicy
from dataplane.providers.base import Provider
from dataplane.stores.base import Store
from dataplane.stores.factory import store_from_config
from dataplane.telemetry.sinks import FanOutSink, FirehoseSink, LakeSink, RecordMetrics, StdoutSink, TelemetrySink


def utc_clock() -> datetime:
    return datetime.now(UTC)


class PolicyCache:
    """Effective policies kept in memory for a short, configured time.

    A warm turn reads no policy from the store; an admin's change reaches this process within
    `ttl_seconds`. Unknown users are cached too, so a flood from a user without a policy does
    not become a flood of store reads.
    """

    def __init__(self, store: Store, *, ttl_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.monotonic = monotonic
        self._entries: dict[str, tuple[float, EffectivePolicy | None]] = {}
        self._lock = threading.Lock()

    def get(self, sub: str) -> EffectivePolicy | None:
        now = self.monotonic()
        with self._lock:
            entry = self._entries.get(sub)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        policy = self.store.policy_get(sub)
        with self._lock:
            self._entries[sub] = (now, policy)
        return policy

    def forget(self, sub: str | None = None) -> None:
        with self._lock:
            if sub is None:
                self._entries.clear()
            else:
                self._entries.pop(sub, None)


@dataclass
class Gateway:
    config: GatewayConfig
    store: Store
    telemetry: TelemetrySink
    provider_factory: Callable[[AllowedModel, GatewayConfig], Provider]
    clock: Callable[[], datetime] = utc_clock
    policies: PolicyCache = field(init=False)
    _providers: dict[tuple[str, str, str], Provider] = field(init=False, default_factory=dict)
    _providers_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.policies = PolicyCache(self.store, ttl_seconds=self.config.policy_cache_seconds)

    def provider_for(self, model: AllowedModel) -> Provider:
        key = (model.provider, model.model_id, model.endpoint)
        with self._providers_lock:
            provider = self._providers.get(key)
            if provider is None:
                provider = self._providers[key] = self.provider_factory(model, self.config)
            return provider

    @classmethod
    def from_config(cls, config: GatewayConfig, *, record_metrics: RecordMetrics | None = None) -> Gateway:
        from dataplane.providers import provider_for

        return cls(
            config=config,
            store=store_from_config(config),
            telemetry=build_telemetry(config, record_metrics=record_metrics),
            provider_factory=provider_for,
        )


def build_telemetry(config: GatewayConfig, *, record_metrics: RecordMetrics | None = None) -> TelemetrySink:
    sinks: list[TelemetrySink] = []
    for name in config.telemetry_sinks:
        if name == "stdout":
            sinks.append(StdoutSink(namespace=config.metrics_namespace, record_metrics=record_metrics))
        elif name == "lake":
            sinks.append(LakeSink(config.lake_dir))
        elif name == "firehose":
            from dataplane.aws import ClientSettings, client

            firehose = client("firehose", ClientSettings(region=config.region))
            sinks.append(FirehoseSink(stream_name=config.firehose_stream, client=firehose))
    return FanOutSink(sinks)
