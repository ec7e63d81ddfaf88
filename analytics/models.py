from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class ChartKind(models.TextChoices):
    LINE = "line", _("Line over time")
    BAR = "bar", _("Bars by category")


class ReportDefinition(models.Model):
    """A report: one Athena query with the standard parameters, and how to chart its rows."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    sql = models.TextField(
        _("SQL (Athena dialect)"),
        help_text=(
            "Reads the table `requests` (and may join `users`, `group_members`); placeholders :first_dt, :last_dt, "
            ":start_ts, :end_ts, :time_zone, :start_date, :end_date, :model_id, :all_users, :group_name."
        ),
    )
    chart_kind = models.CharField(max_length=8, choices=ChartKind.choices, default=ChartKind.BAR)
    x_column = models.CharField(max_length=64)
    y_column = models.CharField(max_length=64)
    series_column = models.CharField(max_length=64, blank=True, help_text=_("Optional: one line per value."))
    default_params = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"days": 7} (7 days up to today), {"period": "previous_month"}, {"time_zone": "Asia/Seoul"}',
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("analytics:report_detail", args=[self.slug])


class ScheduleFrequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly (Mondays)")
    MONTHLY = "monthly", _("Monthly (1st)")


class ReportSchedule(models.Model):
    """When a report runs by itself; mirrored into a django-celery-beat PeriodicTask."""

    definition = models.OneToOneField(ReportDefinition, on_delete=models.CASCADE, related_name="schedule")
    frequency = models.CharField(max_length=8, choices=ScheduleFrequency.choices, default=ScheduleFrequency.DAILY)
    hour_utc = models.PositiveSmallIntegerField(default=2, help_text=_("Hour of day (UTC) it runs, 0-23."))
    enabled = models.BooleanField(default=True)
    recipients = models.TextField(
        blank=True,
        help_text=_("E-mail addresses that get each scheduled run (CSV attached), separated by commas or lines."),
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.definition} ({self.get_frequency_display().lower()})"


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class ReportRun(models.Model):
    """One execution of a report with its parameters, and its stored rows."""

    definition = models.ForeignKey(ReportDefinition, on_delete=models.CASCADE, related_name="runs")
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    trigger = models.CharField(max_length=10, default="manual")  # manual | schedule
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    columns = models.JSONField(default=list, blank=True)
    rows = models.JSONField(default=list, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    rows_truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    engine = models.CharField(max_length=16, blank=True)
    engine_query_id = models.CharField(max_length=128, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True, help_text=_("When a scheduled run was mailed."))
    sql = models.TextField(_("SQL as run"), blank=True, help_text=_("Athena SQL with every parameter as a literal."))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="report_runs"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["definition", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.definition.slug} #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("analytics:run_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
