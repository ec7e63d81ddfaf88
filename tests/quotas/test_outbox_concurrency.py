"""Two drains at once never publish the same row (PostgreSQL's SELECT … FOR UPDATE SKIP LOCKED)."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from quotas import services
from quotas.models import PolicyOutbox
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class RendezvousStore:
    """Holds each drain at its first write until the other drain is writing too, so both hold
    their row locks at the same moment."""

    def __init__(self, store) -> None:
        self.store = store
        self.barrier = threading.Barrier(2, timeout=15)
        self.seen: set[int] = set()
        self.published: list[str] = []
        self.lock = threading.Lock()

    def policy_put(self, policy):
        thread = threading.get_ident()
        with self.lock:
            first = thread not in self.seen
            self.seen.add(thread)
        if first:
            self.barrier.wait()  # a drain that blocked on the other's locks would never get here
        with self.lock:
            self.published.append(policy.sub)
        return self.store.policy_put(policy)

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_two_drains_share_the_rows_and_publish_each_once(
    default_policy, sqlite_store, use_store, settings, monkeypatch
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SKIP LOCKED) need PostgreSQL; SQLite serialises writers instead")
    settings.QUOTAS_OUTBOX_BATCH_SIZE = 5
    users = [UserFactory(username=f"user{n:02d}") for n in range(10)]
    PolicyOutbox.objects.all().delete()
    monkeypatch.setattr(services.outbox, "outbox_drain_on_commit", lambda: None)  # the two threads drain
    with transaction.atomic():
        services.policy_publish_request(users=users, force=True)
    store = use_store(RendezvousStore(sqlite_store))
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            services.outbox_drain(max_batches=1)
        except BaseException as error:  # noqa: BLE001  (reported by the assertion below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(store.published) == sorted(user.sub for user in users)  # each exactly once
    assert set(PolicyOutbox.objects.values_list("status", "attempts")) == {("done", 1)}
