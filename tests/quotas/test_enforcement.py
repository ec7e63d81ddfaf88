"""End to end: an admin's change in the Django admin is enforced by the data plane within the
policy cache's lifetime (seconds), through outbox → store → pipeline."""
from __future__ import annotations

import pytest

from dataplane.channels import inbound_channel
from dataplane.config import GatewayConfig
from dataplane.gateway import Gateway, PolicyCache
from dataplane.outbound import ListOutbound
from dataplane.pipeline import Identity, chat_turn
from dataplane.providers import provider_for
from dataplane.telemetry.sinks import MemorySink
from quotas import services

pytestmark = pytest.mark.django_db

POLICY_CACHE_SECONDS = 5.0


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ask(gateway: Gateway, user, question: str) -> tuple[ListOutbound, object]:
    outbound = ListOutbound()
    record = chat_turn(
        gateway=gateway,
        identity=Identity(sub=user.sub, username=user.username),
        channel=inbound_channel(user.sub),
        payload={
            "modelId": "demo.echo-v1",
            "conversationId": "c-1",
            "messages": [{"role": "user", "content": [{"text": question}]}],
            "inferenceConfig": {"maxTokens": 64},
        },
        outbound=outbound,
    )
    return outbound, record


def test_a_lowered_limit_is_enforced_once_the_policy_cache_expires(
    client, admin_user, alice, default_policy, demo_model, gateway_store, drain
):
    with drain():
        services.policy_publish_request(users=[alice], force=True)
    config = GatewayConfig(store="sqlite", policy_cache_seconds=POLICY_CACHE_SECONDS, extra={"demo_chunk_delay": 0})
    gateway = Gateway(config=config, store=gateway_store, telemetry=MemorySink(), provider_factory=provider_for)
    monotonic = Monotonic()
    gateway.policies = PolicyCache(gateway_store, ttl_seconds=POLICY_CACHE_SECONDS, monotonic=monotonic)

    outbound, record = _ask(gateway, alice, "What is a token?")
    assert record.outcome == "ok", outbound.errors()

    client.force_login(admin_user)
    with drain():
        response = client.post(
            f"/admin/quotas/quotapolicy/{default_policy.pk}/change/",
            {"name": "Standard", "is_default": "on", "ten_minute_total": "10", "monthly_total": "1000000",
             "cache_scope": "per_user", "guardrail": "default", "guardrail_stream_mode": "sync"},
        )
    assert response.status_code == 302
    assert gateway_store.policy_get(alice.sub).ten_minute.total == 10

    monotonic.now += POLICY_CACHE_SECONDS - 0.1  # still the cached policy: allowed
    assert _ask(gateway, alice, "What is a window?")[1].outcome == "ok"

    monotonic.now += 0.2  # the cache entry has expired: the new limit applies
    # (A new question each time: a repeated one would be answered from the cache, free.)
    outbound, record = _ask(gateway, alice, "What is a quota?")
    assert record.outcome == "refused"
    assert record.refusal_window == "10m"
    [error] = outbound.errors()
    assert error["type"] == "QuotaExceeded"
