"""Pytest plugin: a DynamoDB-compatible server over HTTP (moto) and the stores built on it.

The server starts once per session on 127.0.0.1 (ephemeral port) and stops at the end. Every
test gets its own uniquely named tables, so tests never see each other's items. Clients carry
dummy credentials and always point at the local endpoint: nothing here can reach real AWS.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

DUMMY_CREDENTIALS: dict[str, Any] = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}
REGION = "us-east-1"


class StoreClock:
    """A clock the test moves by hand; stores read it for cache and prepared-answer expiry."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


def _serialised(app):
    """Run one request at a time.

    moto's DynamoDB backend has no locking: two concurrent TransactWriteItems can both pass
    their conditions, and a cancelled one restores a snapshot of the table that erases the
    other's write. Real DynamoDB serialises transactions on an item, so serialising requests
    here models the real service; the clients still race (50 threads, one HTTP request each).
    """
    lock = threading.Lock()

    def application(environ, start_response):
        with lock:
            # Materialise the body inside the lock: the backend does its work while iterating.
            return list(app(environ, start_response))

    return application


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 (ephemeral port): every service moto has, told apart by the
    SigV4 credential scope of each request. Yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    server = make_server(
        "127.0.0.1",
        0,
        _serialised(DomainDispatcherApplication(create_backend_app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[str]:
    """The session's moto server (the AWS twin provisions its other services on it too)."""
    with moto_server() as url:
        yield url


def dynamodb_client(endpoint_url: str, **settings):
    """A private client (so a test may hook its events) with dummy credentials, local only."""
    from dataplane import aws

    assert endpoint_url.startswith("http://127.0.0.1:"), endpoint_url
    return aws.new_client(
        "dynamodb",
        aws.ClientSettings(region=REGION, endpoint_url=endpoint_url, **(DUMMY_CREDENTIALS | settings)),
    )


@pytest.fixture
def store_clock() -> StoreClock:
    return StoreClock(datetime(2026, 11, 29, 5, 13, 7, tzinfo=UTC))


@pytest.fixture
def dynamodb_store(dynamodb_server: str, store_clock: StoreClock):
    from dataplane.stores.base import StoreStats
    from dataplane.stores.dynamodb import DynamoDBStore

    prefix = f"t-{uuid.uuid4().hex[:12]}"
    store = DynamoDBStore(
        policies_table=f"{prefix}-policies",
        usage_table=f"{prefix}-usage",
        cache_table=f"{prefix}-cache",
        region=REGION,
        endpoint_url=dynamodb_server,
        client=dynamodb_client(dynamodb_server),
        clock=store_clock,
    )
    store.create_tables()
    store.stats = StoreStats()  # table setup is not the test's traffic
    yield store
    store.delete_tables()


@pytest.fixture
def sqlite_store(tmp_path, store_clock: StoreClock):
    from dataplane.stores.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "dataplane.sqlite3"), clock=store_clock)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request):
    """The contract suite runs once per adapter."""
    return request.getfixturevalue(f"{request.param}_store")
