"""Seed the built-in reports, a daily schedule for each, and the stale-run reaper's beat task.

Called by the data migration (with its historical models) and after every `migrate`/`flush`
(post_migrate, with the real ones), so the reports exist again after a test flush. Idempotent:
definitions are matched by slug and created when missing; schedules and beat tasks are created
once and then left as admins configured them (a re-run only fills gaps).
"""
from __future__ import annotations

from typing import Any

from analytics.catalogue import DEFAULT_PARAMS, REPORTS
from analytics.schedules import reaper_ensure, schedule_sync_periodic_task


def reports_seed(apps: Any, *, refresh: bool = False) -> None:
    """`refresh` rewrites existing built-in reports from the catalogue (for a later migration that
    changes their SQL); without it, what admins edited stays as they left it."""
    ReportDefinition = apps.get_model("analytics", "ReportDefinition")
    ReportSchedule = apps.get_model("analytics", "ReportSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    for report in REPORTS:
        fields = {
            key: report[key] for key in ("title", "description", "chart_kind", "x_column", "y_column", "series_column")
        }
        fields["sql"] = report["sql"].strip()
        definition, created = ReportDefinition.objects.get_or_create(
            slug=report["slug"], defaults={**fields, "default_params": dict(DEFAULT_PARAMS)}
        )
        if refresh and not created:
            ReportDefinition.objects.filter(pk=definition.pk).update(**fields)
        schedule, created = ReportSchedule.objects.get_or_create(definition=definition, defaults={"frequency": "daily"})
        if created or schedule.periodic_task_id is None:
            schedule_sync_periodic_task(
                schedule=schedule, crontab_model=CrontabSchedule, periodic_task_model=PeriodicTask
            )
    reaper_ensure(interval_model=IntervalSchedule, periodic_task_model=PeriodicTask)
