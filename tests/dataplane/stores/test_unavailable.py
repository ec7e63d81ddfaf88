"""A store that cannot be reached fails fast with StoreUnavailableError, never a raw library error."""
from __future__ import annotations

import socket
import time

import pytest

from dataplane.errors import StoreUnavailableError
from dataplane.policy import WindowLimits
from dataplane.stores.base import TokenCount
from dataplane.stores.dynamodb import DynamoDBStore
from dataplane.stores.sqlite import SQLiteStore
from tests.dataplane.stores.test_contract import SUB, charges_at
from tests.servers.dynamodb import dynamodb_client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on exit: nothing listens there


@pytest.fixture(params=["sqlite", "dynamodb"])
def unreachable_store(request, tmp_path, store_clock):
    if request.param == "sqlite":
        return SQLiteStore(str(tmp_path), clock=store_clock)  # a directory, not a database file
    endpoint = f"http://127.0.0.1:{closed_port()}"
    return DynamoDBStore(
        policies_table="p", usage_table="u", cache_table="c", region="us-east-1", endpoint_url=endpoint,
        client=dynamodb_client(endpoint, connect_timeout=0.2, read_timeout=0.2, max_attempts=1),
        clock=store_clock,
    )


@pytest.mark.timeout(30)
def test_an_unreachable_store_raises_store_unavailable_quickly(unreachable_store, store_clock):
    charges = charges_at(store_clock(), ten=WindowLimits(total=1000))
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as failure:
        unreachable_store.reserve(sub=SUB, charges=charges, estimate=TokenCount(input=1, output=1))
    with pytest.raises(StoreUnavailableError):
        unreachable_store.policy_get(SUB)
    with pytest.raises(StoreUnavailableError):
        unreachable_store.cache_get("k")
    elapsed = time.monotonic() - started

    # botocore's defaults (60 s timeouts, retries) would hold a chat turn far longer.
    assert elapsed < 5, elapsed
    assert failure.value.type == "InternalError"
    assert ("SQLite" in failure.value.message) or ("DynamoDB TransactWriteItems on u" in failure.value.message)
