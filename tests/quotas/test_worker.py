"""A real Celery worker on Redis draining the outbox into DynamoDB over HTTP (moto server).

Skipped without `REDIS_URL`. Each test uses its own queue, so workers of parallel runs on the
same Redis never take each other's tasks.
"""
from __future__ import annotations

import os
import uuid
from io import StringIO

import pytest
from celery.signals import task_postrun
from django.core.management import CommandError, call_command
from django.db import connections, transaction

from dataplane.errors import StoreUnavailableError
from quotas import services
from quotas.models import PolicyOutbox, QuotaPolicy, UserPolicyOverride
from quotas.tasks import outbox_drain
from tests.factories import UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _close_thread_connections(**kwargs) -> None:
    # Connections are per thread: the worker thread's must not outlive the test database.
    connections.close_all()


@pytest.fixture
def celery_app():
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("REDIS_URL is not set: the worker tests need a real Redis broker")
    import celery.contrib.testing.tasks  # noqa: F401  (registers celery.ping for start_worker)

    from gateway_project.celery import app

    names = ("broker_url", "result_backend", "task_always_eager", "task_default_queue")
    saved = {name: app.conf[name] for name in names}
    queue = f"quotas-test-{uuid.uuid4().hex[:10]}"
    app.conf.update(broker_url=redis_url, result_backend=redis_url, task_always_eager=False, task_default_queue=queue)
    _routing_forget(app)
    task_postrun.connect(_close_thread_connections, weak=False)
    try:
        yield app
    finally:
        task_postrun.disconnect(_close_thread_connections)
        app.conf.update(saved)
        _routing_forget(app)


def _routing_forget(app) -> None:
    """Celery caches the default queue and the router on first use; make it read the conf again."""
    for name in ("default_queue", "queues", "router", "send_task_message"):
        app.amqp.__dict__.pop(name, None)
    app.amqp.flush_routes()


def _worker(app, *, ping: bool = True):
    from celery.contrib.testing.worker import start_worker

    return start_worker(
        app,
        pool="solo",
        concurrency=1,
        queues=[app.conf.task_default_queue],
        shutdown_timeout=30,
        perform_ping_check=ping,
    )


def _drift() -> int:
    try:
        call_command("check_policy_drift", stdout=StringIO())
    except CommandError as error:  # it carries the exit status
        return error.returncode
    return 0


class CountingStore:
    """The DynamoDB store, with a hook on every policy write."""

    def __init__(self, store, on_put=None) -> None:
        self.store = store
        self.puts = 0
        self.on_put = on_put

    def policy_put(self, policy):
        if self.on_put:
            self.on_put(self)
        written = self.store.policy_put(policy)
        self.puts += 1
        return written

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_worker_publishes_a_committed_change_to_dynamodb(celery_app, dynamodb_store, use_store, default_policy):
    use_store(dynamodb_store)
    alice = UserFactory(username="alice")
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000)
    with _worker(celery_app):
        with transaction.atomic():  # as the admin saves an override: the row, then its service
            UserPolicyOverride.objects.create(user=alice, policy=strict)
            services.assignment_change_publish(user_ids=[alice.pk])  # enqueues a drain on commit
        # The solo worker takes tasks in order: once this one is done, so is the one above.
        outbox_drain.delay().get(timeout=60)
    stored = dynamodb_store.policy_get(alice.sub)
    assert stored.policy_name == "Strict"
    assert stored.ten_minute.total == 100
    assert not PolicyOutbox.objects.filter(status="pending").exists()
    assert set(PolicyOutbox.objects.filter(result="written").values_list("attempts", flat=True)) == {1}
    assert _drift() == 0


def test_worker_retries_while_the_store_is_down(celery_app, dynamodb_store, use_store, default_policy):
    def fail_first(store):
        if store.puts == 0 and not getattr(store, "failed", False):
            store.failed = True
            raise StoreUnavailableError("DynamoDB PutItem failed: connection refused (simulated)")

    flaky = use_store(CountingStore(dynamodb_store, on_put=fail_first))
    alice = UserFactory(username="alice")
    services.policy_publish_request(users=[alice])
    with _worker(celery_app):
        outbox_drain.delay().get(timeout=60)  # fails once, retries after a 1 s back-off, succeeds
    row = PolicyOutbox.objects.get(sub=alice.sub, result="written")
    assert row.status == "done"
    assert row.attempts == 2
    assert flaky.failed
    assert dynamodb_store.policy_get(alice.sub).policy_name == "Standard"


def test_worker_stopped_mid_sync_then_restarted_ends_clean(
    celery_app, dynamodb_store, use_store, default_policy, settings
):
    from celery.worker import state

    settings.QUOTAS_OUTBOX_BATCH_SIZE = 4
    users = [UserFactory(username=f"user{n:02d}") for n in range(10)]

    def stop_worker_on_first_write(store):
        if store.puts == 0:
            state.should_terminate = 0  # the worker finishes this task, then exits

    counting = use_store(CountingStore(dynamodb_store, on_put=stop_worker_on_first_write))
    with transaction.atomic():
        services.policy_publish_request(users=users, force=True)
    assert PolicyOutbox.objects.filter(status="pending").count() == 10
    celery_app.control.purge()  # one sync task, started below, instead of one per change
    first_task = outbox_drain.delay()

    with _worker(celery_app, ping=False):
        first_task.get(timeout=60)  # one batch, then the worker stops (it never sees the follow-up)
    done_first = PolicyOutbox.objects.filter(status="done", result="written").count()
    assert done_first == 4, "the first worker was to stop after one batch"
    assert PolicyOutbox.objects.filter(status="pending").count() == 6
    assert _drift() == 1

    counting.on_put = None
    with _worker(celery_app):
        for _ in range(10):  # bounded: each task drains a batch of 4
            if not PolicyOutbox.objects.filter(status="pending").exists():
                break
            outbox_drain.delay().get(timeout=60)
    assert not PolicyOutbox.objects.filter(status="pending").exists()
    written = PolicyOutbox.objects.filter(result="written")
    assert written.count() == 10
    assert set(written.values_list("attempts", flat=True)) == {1}
    assert counting.puts == 10  # every row was published exactly once
    assert _drift() == 0


def test_an_admin_change_is_enforced_by_the_data_plane_through_a_real_worker_and_dynamodb(
    celery_app, dynamodb_store, use_store, default_policy, client, admin_user
):
    """The whole loop: admin form → outbox → Celery worker on Redis → DynamoDB → pipeline."""
    from dataplane.channels import inbound_channel
    from dataplane.config import GatewayConfig
    from dataplane.gateway import Gateway
    from dataplane.outbound import ListOutbound
    from dataplane.pipeline import Identity, chat_turn
    from dataplane.providers import provider_for
    from dataplane.telemetry.sinks import MemorySink
    from quotas.models import ModelCatalogueEntry

    use_store(dynamodb_store)
    ModelCatalogueEntry.objects.create(
        provider="demo", model_id="demo.echo-v1", display_name="Demo model (offline)", available_to_all=True
    )
    alice = UserFactory(username="alice")
    services.policy_publish_request(users=[alice])  # as signing up does
    # The data plane as the Lambda runs it, reading policies from the same DynamoDB tables;
    # no policy cache, so "within seconds" is bounded by the worker alone.
    gateway = Gateway(
        config=GatewayConfig(store="dynamodb", policy_cache_seconds=0, extra={"demo_chunk_delay": 0}),
        store=dynamodb_store,
        telemetry=MemorySink(),
        provider_factory=provider_for,
    )

    def ask(question: str):
        outbound = ListOutbound()
        record = chat_turn(
            gateway=gateway,
            identity=Identity(sub=alice.sub),
            channel=inbound_channel(alice.sub),
            payload={"modelId": "demo.echo-v1", "messages": [{"role": "user", "content": [{"text": question}]}],
                     "inferenceConfig": {"maxTokens": 64}},
            outbound=outbound,
        )
        return record, outbound

    with _worker(celery_app):
        outbox_drain.delay().get(timeout=60)  # alice's first policy
        assert ask("What is a token?")[0].outcome == "ok"

        client.force_login(admin_user)
        response = client.post(
            f"/admin/quotas/quotapolicy/{default_policy.pk}/change/",
            {"name": "Standard", "is_default": "on", "ten_minute_total": "50", "monthly_total": "1000000",
             "cache_scope": "per_user", "guardrail": "default", "guardrail_stream_mode": "sync"},
        )
        assert response.status_code == 302
        outbox_drain.delay().get(timeout=60)  # the solo worker has run the on-commit drain before this

    record, outbound = ask("What is a window?")
    assert record.outcome == "refused"
    [error] = outbound.errors()
    assert error["type"] == "QuotaExceeded"
    assert error["limit"] == 50
    assert "50" in error["message"]
