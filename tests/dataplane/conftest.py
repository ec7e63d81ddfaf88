"""Fixtures for data-plane tests: a gateway on a real SQLite store with a scripted provider.

The scripted provider stands in for the *model* only (the provider port); the Bedrock and
OpenAI adapters have their own tests against local servers speaking the real wire formats.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from dataplane.config import GatewayConfig
from dataplane.errors import GatewayError
from dataplane.gateway import Gateway
from dataplane.policy import AllowedModel, EffectivePolicy, WindowLimits
from dataplane.providers.base import ModelCall, ProviderStream, StreamEnd, TextDelta
from dataplane.telemetry.sinks import MemorySink

ALICE = "0b6a3f4e-0000-4000-8000-00000000a11c"
BOB = "0b6a3f4e-0000-4000-8000-000000000b0b"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@dataclass
class ScriptedProvider:
    """A model whose answer the test decides: chunks, usage, and an optional failure."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "."])
    usage: tuple[int, int] | None = (12, 4)
    fail_after: int | None = None
    error: GatewayError | None = None
    calls: list[ModelCall] = field(default_factory=list)
    closed: int = 0
    name: str = "scripted"
    gate: threading.Event | None = None  # when set, waits on it before each chunk after the first

    def stream(self, call: ModelCall) -> ProviderStream:
        self.calls.append(call)
        try:
            for index, chunk in enumerate(self.chunks):
                if self.fail_after is not None and index == self.fail_after and self.error:
                    raise self.error
                if self.gate is not None and index > 0:
                    self.gate.wait(5)
                yield TextDelta(chunk)
            if self.fail_after is not None and self.fail_after >= len(self.chunks) and self.error:
                raise self.error
            yield StreamEnd(
                stop_reason="end_turn",
                input_tokens=self.usage[0] if self.usage else None,
                output_tokens=self.usage[1] if self.usage else None,
            )
        finally:
            self.closed += 1


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_policy(
    sub: str, *, version: int = 1, ten_minute: int | None = 10_000, monthly: int | None = 100_000, **kw
) -> EffectivePolicy:
    return EffectivePolicy(
        sub=sub,
        version=version,
        models=(
            AllowedModel(model_id=MODEL, display_name="Claude 3.5 Haiku", provider="bedrock", default_max_tokens=100,
                         price_in_per_1k=0.0008, price_out_per_1k=0.004),
        ),
        ten_minute=WindowLimits(total=ten_minute),
        monthly=WindowLimits(total=monthly),
        **kw,
    )


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 29, 5, 12, 30, tzinfo=UTC))


@pytest.fixture
def telemetry() -> MemorySink:
    return MemorySink()


@pytest.fixture
def gateway(tmp_path, provider, clock, telemetry) -> Gateway:
    from dataplane.stores.sqlite import SQLiteStore

    config = GatewayConfig(store="sqlite", sqlite_path=str(tmp_path / "store.sqlite3"), policy_cache_seconds=60)
    store = SQLiteStore(config.sqlite_path, clock=clock)
    gw = Gateway(
        config=config, store=store, telemetry=telemetry, provider_factory=lambda model, cfg: provider, clock=clock
    )
    store.policy_put(make_policy(ALICE))
    store.policy_put(make_policy(BOB))
    return gw


def chat_request(text: str = "What is a token?", **extra) -> dict:
    body = {"modelId": MODEL, "conversationId": "conv-1", "messages": [{"role": "user", "content": [{"text": text}]}]}
    body.update(extra)
    return body


@pytest.fixture
def bedrock_gateway(gateway, bedrock_server, bedrock_client) -> Gateway:
    """The gateway with the real Bedrock provider, talking to the local ConverseStream server."""
    from dataplane.providers.bedrock import BedrockProvider

    bedrock_server.reset()
    provider = BedrockProvider(client=bedrock_client)
    gateway.provider_factory = lambda model, config: provider
    gateway._providers.clear()
    return gateway
