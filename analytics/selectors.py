"""Reads for the analysts' pages."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery

from analytics.models import ReportDefinition, ReportRun


def report_list_with_latest_run() -> list[tuple[ReportDefinition, ReportRun | None]]:
    # One query for the definitions, one for their latest runs (not one per report).
    latest_ids = ReportRun.objects.filter(definition=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    definitions = list(ReportDefinition.objects.filter(is_active=True).annotate(latest_run_id=Subquery(latest_ids)))
    runs = ReportRun.objects.in_bulk([d.latest_run_id for d in definitions if d.latest_run_id])
    return [(definition, runs.get(definition.latest_run_id)) for definition in definitions]


def report_runs_recent(*, definition: ReportDefinition, limit: int = 25) -> QuerySet[ReportRun]:
    return definition.runs.select_related("requested_by").defer("rows")[:limit]


def usernames_by_sub(subs: list[str]) -> dict[str, str]:
    """Usernames for the subs a report shows, so analysts read names, not UUIDs."""
    return dict(get_user_model().objects.filter(sub__in=subs).values_list("sub", "username"))
