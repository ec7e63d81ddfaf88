"""A scheduled report, fired as beat fires it, executed by a real Celery worker over Redis."""
from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

import analytics.tasks  # noqa: F401 — registers the tasks on the app the worker serves
from analytics.lake import lake_write_records, synthetic_records
from analytics.models import ReportRun, RunStatus
from analytics.schedules import periodic_task_name
from analytics.services import lake_today
from gateway_project.celery import app
from tests.analytics import expected
from tests.analytics.conftest import USER_SUBS

RUN_TASK = "analytics.tasks.report_run_task"


@pytest.fixture
def private_queue():
    """Route this test's tasks to a queue of its own: other test runs may share the Redis server."""
    queue = f"analytics-test-{uuid.uuid4().hex}"
    saved = (app.conf.task_always_eager, app.conf.task_routes)
    app.conf.task_always_eager = False
    app.conf.task_routes = {"analytics.tasks.*": {"queue": queue}}
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)
    yield queue
    app.conf.task_always_eager, app.conf.task_routes = saved
    app.amqp.flush_routes()
    for cached in ("router", "queues", "default_queue"):
        app.amqp.__dict__.pop(cached, None)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_schedule_fires_a_report_that_a_real_worker_runs(lake_dir, private_queue):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set: this test needs a real Redis broker for the Celery worker")
    yesterday = lake_today() - timedelta(days=1)
    records = synthetic_records(first_day=yesterday - timedelta(days=9), days=10, user_subs=USER_SUBS, seed=5)
    lake_write_records(lake_dir, records)

    periodic_task = PeriodicTask.objects.get(name=periodic_task_name("errors-by-type"))
    # Beat last ran it two days ago, so the daily crontab entry is due now.
    periodic_task.last_run_at = timezone.now() - timedelta(days=2)
    periodic_task.save()
    due, _next = ModelEntry(periodic_task, app=app).is_due()
    assert due

    finished = threading.Event()

    def on_postrun(sender=None, args=None, **kwargs):
        if sender is not None and sender.name == RUN_TASK:
            finished.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_worker(app, perform_ping_check=False, queues=[private_queue], pool="solo", shutdown_timeout=30):
            fired = app.send_task(periodic_task.task, args=json.loads(periodic_task.args), queue=private_queue)
            run_id = fired.get(timeout=60)
            assert finished.wait(timeout=120), "the worker never ran the report run task"
    finally:
        task_postrun.disconnect(on_postrun)

    run = ReportRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.trigger == "schedule"
    assert run.engine == "duckdb"
    # A daily schedule reports the calendar day that just ended.
    assert run.params["start_date"] == run.params["end_date"] == yesterday.isoformat()
    want = expected.errors_by_type(expected.in_scope(records, start=yesterday, end=yesterday))
    assert want
    assert run.rows == want
