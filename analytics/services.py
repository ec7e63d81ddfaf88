"""Report runs: request one, execute it, fire schedules, and fail runs a dead worker left behind."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.catalogue import DEFAULT_PARAMS
from analytics.directory import DirectoryPublishError, directory_publish
from analytics.engines import QueryResult, ReportEngineError, engine_from_settings
from analytics.models import ReportDefinition, ReportRun, ReportSchedule, RunStatus
from analytics.params import (
    BoundFilters,
    ReportParams,
    ReportParamsError,
    gettext_noop,
    local_today,
    report_params_parse,
    report_sql_bind,
)

logger = logging.getLogger(__name__)

# The run task's limits (Celery kills the task at the hard one). The engine's own query limit is
# shorter, so Athena queries are stopped by us, with a clear error, before Celery steps in.
RUN_HARD_LIMIT_SECONDS = 10 * 60
RUN_SOFT_LIMIT_SECONDS = RUN_HARD_LIMIT_SECONDS - 30
ENGINE_TIME_LIMIT_SECONDS = RUN_SOFT_LIMIT_SECONDS - 30
# A run still queued/running this long after it began cannot still be alive.
REAP_AFTER = timedelta(seconds=RUN_HARD_LIMIT_SECONDS + 120)
MAX_STORED_ROWS = 10_000


# What each schedule reports: the calendar period that just ended (a monthly run on the 1st
# reports the whole previous month, not the last 7 days).
PERIOD_BY_FREQUENCY = {"daily": "previous_day", "weekly": "previous_week", "monthly": "previous_month"}


def report_time_zone() -> str:
    """The default report time zone, read at call time so `override_settings` works."""
    return settings.GATEWAY_REPORT_TIMEZONE


def lake_today() -> date:
    """Today in the report time zone."""
    return local_today(now=timezone.now(), time_zone=report_time_zone())


def _parse(params: Mapping[str, Any]) -> ReportParams:
    return report_params_parse(params, now=timezone.now(), default_time_zone=report_time_zone())


def report_params_validate(*, params: Mapping[str, Any]) -> ReportParams:
    parsed = _parse(params)
    if parsed.group is not None and not Group.objects.filter(name=parsed.group).exists():
        raise ReportParamsError(gettext_noop("There is no group named %(group)s."), group=repr(parsed.group))
    return parsed


def report_run_request(
    *,
    definition: ReportDefinition,
    params: Mapping[str, Any],
    requested_by: Any | None,
    trigger: str = "manual",
) -> ReportRun:
    """Validate the parameters, store a queued run, and enqueue it once the row is committed."""
    parsed = report_params_validate(params=params)
    with transaction.atomic():
        run = ReportRun.objects.create(
            definition=definition,
            # Explicit dates, never "last 7 days": a stored run can be re-read and re-run as it was.
            params=parsed.to_json(),
            requested_by=requested_by if requested_by is not None and requested_by.is_authenticated else None,
            trigger=trigger,
        )
        transaction.on_commit(lambda: _enqueue_run(run.pk))
    return run


def _enqueue_run(run_id: int) -> None:
    from analytics.background import report_run_submit, runs_in_background
    from analytics.tasks import report_run_task

    if runs_in_background():
        report_run_submit(run_id=run_id)
    else:
        report_run_task.delay(run_id)


def report_run_execute(*, run_id: int) -> ReportRun:
    """Run the report's query on the configured engine and store the rows, or the error."""
    with transaction.atomic():
        run = ReportRun.objects.select_for_update().select_related("definition").get(pk=run_id)
        if run.is_finished:
            # A redelivered message (acks_late) for a run that already ended, or one the reaper failed.
            return run
        run.status, run.started_at, run.progress, run.error = RunStatus.RUNNING, timezone.now(), 5, ""
        run.save(update_fields=["status", "started_at", "progress", "error"])
    began = time.monotonic()
    try:
        result, engine_name = _run_query(run)
    except (ReportParamsError, ReportEngineError) as error:
        return _run_fail(run, str(error), began=began, query_id=getattr(error, "query_id", ""))
    except SoftTimeLimitExceeded:
        return _run_fail(run, f"The report took longer than {RUN_SOFT_LIMIT_SECONDS} s and was stopped.", began=began)
    except Exception:
        logger.exception("report run %s failed unexpectedly", run_id)
        # The traceback is in the log; the page says what happened without internals.
        return _run_fail(
            run, f"The report failed unexpectedly (run {run_id}); the error is in the server log.", began=began
        )
    return _run_succeed(run, result, engine_name=engine_name, began=began)


def _run_query(run: ReportRun) -> tuple[QueryResult, str]:
    params = _parse(run.params)
    if params.group is not None and not Group.objects.filter(name=params.group).exists():
        raise ReportParamsError(f"The group {params.group!r} no longer exists.")
    sql = report_sql_bind(run.definition.sql, BoundFilters(params=params))
    engine = engine_from_settings(time_limit_seconds=ENGINE_TIME_LIMIT_SECONDS)
    try:
        directory_publish()
    except DirectoryPublishError as error:
        raise ReportEngineError(str(error)) from error
    # The SQL exactly as the engine gets it (literals only): an analyst can paste it into Athena.
    run.sql = sql
    ReportRun.objects.filter(pk=run.pk).update(engine=engine.name, sql=sql)

    def on_progress(percent: int) -> None:
        ReportRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(progress=percent)

    return engine.run(sql, on_progress=on_progress), engine.name


def _run_succeed(run: ReportRun, result: QueryResult, *, engine_name: str, began: float) -> ReportRun:
    rows = [[json_cell(value) for value in row] for row in result.rows]
    run.status = RunStatus.SUCCEEDED
    run.progress = 100
    run.columns = list(result.columns)
    run.rows = rows[:MAX_STORED_ROWS]
    run.row_count = len(rows)
    run.rows_truncated = len(rows) > MAX_STORED_ROWS
    run.engine = engine_name
    run.engine_query_id = result.query_id[:128]
    run.error = ""
    _finish(run, began)
    return run


def _run_fail(run: ReportRun, message: str, *, began: float, query_id: str = "") -> ReportRun:
    run.status = RunStatus.FAILED
    run.error = message
    if query_id:
        run.engine_query_id = query_id[:128]
    run.refresh_from_db(fields=["engine", "sql"])
    _finish(run, began)
    return run


def _finish(run: ReportRun, began: float) -> None:
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - began) * 1000)
    run.save()


def json_cell(value: Any) -> Any:
    """A result cell as JSON can store it: dates as ISO strings, decimals as floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def report_schedule_fire(*, definition_id: int) -> ReportRun | None:
    """What beat triggers: run the report with its default parameters, if it is still scheduled."""
    definition = ReportDefinition.objects.filter(pk=definition_id, is_active=True).first()
    if definition is None:
        logger.warning("scheduled report %s is missing or inactive; nothing to run", definition_id)
        return None
    schedule = ReportSchedule.objects.filter(definition=definition).first()
    params = dict(definition.default_params or DEFAULT_PARAMS)
    if schedule is not None:
        # The schedule's calendar period replaces a rolling window; the rest (zone, model, group) stays.
        params.pop("days", None)
        params["period"] = PERIOD_BY_FREQUENCY[schedule.frequency]
    return report_run_request(definition=definition, params=params, requested_by=None, trigger="schedule")


def report_schedule_save(*, schedule: ReportSchedule) -> ReportSchedule:
    """Save a schedule and mirror it into its beat PeriodicTask (the admin calls this)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    from analytics.delivery import recipients_parse
    from analytics.schedules import schedule_sync_periodic_task

    if schedule.hour_utc not in range(24):
        raise ValueError("hour_utc must be between 0 and 23")
    schedule.recipients = "\n".join(recipients_parse(schedule.recipients))
    with transaction.atomic():
        schedule.save()
        schedule_sync_periodic_task(schedule=schedule, crontab_model=CrontabSchedule, periodic_task_model=PeriodicTask)
    return schedule


def report_schedule_delete(*, schedule: ReportSchedule) -> None:
    """Remove a schedule and the beat task that fired it."""
    with transaction.atomic():
        if schedule.periodic_task is not None:
            schedule.periodic_task.delete()
        schedule.delete()


def runs_reap_stale(*, now: datetime | None = None) -> int:
    """Fail runs left queued/running past every time limit (a worker died); return how many."""
    now = now or timezone.now()
    cutoff = now - REAP_AFTER
    stale = ReportRun.objects.filter(
        Q(status=RunStatus.RUNNING, started_at__lt=cutoff) | Q(status=RunStatus.QUEUED, created_at__lt=cutoff)
    )
    minutes = int(REAP_AFTER.total_seconds() // 60)
    count = stale.update(
        status=RunStatus.FAILED,
        finished_at=now,
        error=(
            f"No result after {minutes} minutes: the worker running this report stopped "
            "(restart, crash or lost message). Run it again."
        ),
    )
    if count:
        logger.warning("marked %d stale report run(s) as failed", count)
    return count


def default_params_for(definition: ReportDefinition) -> dict[str, Any]:
    """The definition's default parameters as explicit dates (to prefill a form)."""
    return _parse(definition.default_params or DEFAULT_PARAMS).to_json()
