"""Report schedules as django-celery-beat rows.

The functions take the model classes as arguments so the seed migration can call them with
its historical models, and the admin with the real ones: one definition of "what beat runs".
"""
from __future__ import annotations

import json
from typing import Any

REPORT_FIRE_TASK = "analytics.tasks.report_schedule_fire"
REAP_TASK = "analytics.tasks.runs_reap_stale_task"
REAP_TASK_NAME = "analytics: fail report runs a dead worker left behind"
REAP_EVERY_MINUTES = 5

_CRONTAB_BY_FREQUENCY: dict[str, dict[str, str]] = {
    "daily": {"day_of_week": "*", "day_of_month": "*"},
    "weekly": {"day_of_week": "1", "day_of_month": "*"},
    "monthly": {"day_of_week": "*", "day_of_month": "1"},
}


def periodic_task_name(slug: str) -> str:
    return f"analytics report: {slug}"


def schedule_sync_periodic_task(*, schedule: Any, crontab_model: Any, periodic_task_model: Any) -> Any:
    """Create or update the PeriodicTask that fires `schedule`'s report; return it."""
    if schedule.frequency not in _CRONTAB_BY_FREQUENCY:
        raise ValueError(f"Unknown schedule frequency {schedule.frequency!r}")
    crontab, _ = crontab_model.objects.get_or_create(
        minute="0",
        hour=str(schedule.hour_utc),
        month_of_year="*",
        timezone="UTC",
        **_CRONTAB_BY_FREQUENCY[schedule.frequency],
    )
    task, _ = periodic_task_model.objects.update_or_create(
        name=periodic_task_name(schedule.definition.slug),
        defaults={
            "task": REPORT_FIRE_TASK,
            "args": json.dumps([schedule.definition_id]),
            "crontab": crontab,
            "interval": None,
            "enabled": bool(schedule.enabled and schedule.definition.is_active),
            "description": f"Runs the report “{schedule.definition.title}” with its default parameters.",
        },
    )
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task"])
    return task


def reaper_ensure(*, interval_model: Any, periodic_task_model: Any) -> Any:
    every, _ = interval_model.objects.get_or_create(every=REAP_EVERY_MINUTES, period="minutes")
    task, _ = periodic_task_model.objects.update_or_create(
        name=REAP_TASK_NAME,
        defaults={"task": REAP_TASK, "interval": every, "crontab": None, "args": "[]", "enabled": True},
    )
    return task
