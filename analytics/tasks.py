"""Celery edges of the analytics app: each takes ids and calls one service.

`acks_late` + `reject_on_worker_lost`: the message is acknowledged only when the task ends, so a
worker killed mid-run gets the run redelivered to another worker (the service re-runs a run still
marked running, and ignores one that already ended). If no worker ever finishes it, the periodic
`runs_reap_stale_task` marks it failed with a clear error, so no run stays "running" for ever.
"""
from __future__ import annotations

from celery import shared_task

from analytics import delivery, services


@shared_task(
    name="analytics.tasks.report_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=services.RUN_SOFT_LIMIT_SECONDS,
    time_limit=services.RUN_HARD_LIMIT_SECONDS,
)
def report_run_task(run_id: int) -> str:
    run = services.report_run_execute(run_id=run_id)
    if run.trigger == "schedule":
        delivery.report_run_deliver(run_id=run.pk)
    return run.status


@shared_task(name="analytics.tasks.report_schedule_fire", acks_late=True, soft_time_limit=60, time_limit=90)
def report_schedule_fire(definition_id: int) -> int | None:
    run = services.report_schedule_fire(definition_id=definition_id)
    return run.pk if run else None


@shared_task(name="analytics.tasks.runs_reap_stale_task", soft_time_limit=60, time_limit=90)
def runs_reap_stale_task() -> int:
    return services.runs_reap_stale()
