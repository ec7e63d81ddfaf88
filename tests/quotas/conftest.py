"""Fixtures of the governance tests: which store the control plane publishes to, and a small
catalogue with a default policy.

By default every test publishes to its own SQLite store file (the embedded default's adapter);
tests that need DynamoDB over HTTP, or a store that is down, ask for it.
"""
from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from tests.servers.dynamodb import REGION, dynamodb_client


@pytest.fixture
def use_store(monkeypatch):
    """Point the control plane at `store` for the rest of the test."""

    def use(store):
        monkeypatch.setattr("quotas.store.store_get", lambda: store)
        return store

    return use


@pytest.fixture(autouse=True)
def gateway_store(sqlite_store, use_store):
    return use_store(sqlite_store)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_store():
    """A real DynamoDB adapter pointed at a port nothing listens on."""
    from dataplane.stores.dynamodb import DynamoDBStore

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    return DynamoDBStore(
        policies_table="dead-policies",
        usage_table="dead-usage",
        cache_table="dead-cache",
        region=REGION,
        endpoint_url=endpoint,
        client=dynamodb_client(endpoint, max_attempts=1, connect_timeout=1.0, read_timeout=1.0),
    )


@pytest.fixture
def default_policy(db):
    from quotas.models import QuotaPolicy

    return QuotaPolicy.objects.create(
        name="Standard", is_default=True, ten_minute_total=20_000, monthly_total=1_000_000
    )


@pytest.fixture
def demo_model(db):
    from quotas.models import ModelCatalogueEntry

    return ModelCatalogueEntry.objects.create(
        provider="demo", model_id="demo.echo-v1", display_name="Demo model (offline)", available_to_all=True
    )


@pytest.fixture
def haiku(db):
    from quotas.models import ModelCatalogueEntry

    return ModelCatalogueEntry.objects.create(
        provider="bedrock",
        model_id="us.anthropic.claude-3-5-haiku-20241022-v1:0",
        display_name="Claude 3.5 Haiku",
        price_in_per_1k=Decimal("0.0008"),
        price_out_per_1k=Decimal("0.004"),
    )


@pytest.fixture
def drain(django_capture_on_commit_callbacks):
    """Run the on-commit callbacks a block queued (the outbox drain among them)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
