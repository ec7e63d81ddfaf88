"""The analysts' pages: thin views over analytics.selectors and analytics.services."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import user_is_analyst
from analytics import selectors, services
from analytics.delivery import run_csv_text
from analytics.forms import ReportParamsForm
from analytics.models import ReportDefinition, ReportRun, RunStatus
from analytics.params import ReportParamsError


def analyst_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous → login page; signed in but neither analyst nor admin → 403."""

    @login_required
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_is_analyst(request.user):
            raise PermissionDenied(gettext("Reports are for analysts and gateway admins."))
        return view(request, *args, **kwargs)

    return guarded


@require_GET
@analyst_required
def report_list(request: HttpRequest) -> HttpResponse:
    return render(request, "analytics/report_list.html", {"reports": selectors.report_list_with_latest_run()})


@require_GET
@analyst_required
def report_detail(request: HttpRequest, slug: str) -> HttpResponse:
    definition = get_object_or_404(ReportDefinition, slug=slug, is_active=True)
    form = ReportParamsForm(initial=services.default_params_for(definition))
    return _render_detail(request, definition, form)


def _render_detail(
    request: HttpRequest, definition: ReportDefinition, form: ReportParamsForm, status: int = 200
) -> HttpResponse:
    context = {"definition": definition, "form": form, "runs": selectors.report_runs_recent(definition=definition)}
    return render(request, "analytics/report_detail.html", context, status=status)


@require_POST
@analyst_required
def report_run_now(request: HttpRequest, slug: str) -> HttpResponse:
    definition = get_object_or_404(ReportDefinition, slug=slug, is_active=True)
    if "start_date" in request.POST:
        form = ReportParamsForm(request.POST)
        if not form.is_valid():
            return _render_detail(request, definition, form, status=400)
        params = form.cleaned_data["params"]
    else:  # "Run now" on the list: the report's default parameters
        params = definition.default_params or {"days": 7}
    try:
        run = services.report_run_request(definition=definition, params=params, requested_by=request.user)
    except ReportParamsError as error:
        messages.error(request, error.localized())
        return redirect(definition)
    return redirect(run)


@require_GET
@analyst_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ReportRun.objects.select_related("definition", "requested_by"), pk=run_id)
    names = _user_names(run)
    chart = {
        "kind": run.definition.chart_kind,
        "x": run.definition.x_column,
        "y": run.definition.y_column,
        "series": run.definition.series_column,
        "columns": run.columns,
        "rows": run.rows,
        "labels": names,
    }
    context = {"run": run, "chart": chart, "names": names, "phase": run_phase_text(run)}
    return render(request, "analytics/run_detail.html", context)


def _user_names(run: ReportRun) -> dict[str, str]:
    if "user_sub" not in run.columns:
        return {}
    index = run.columns.index("user_sub")
    return selectors.usernames_by_sub([row[index] for row in run.rows if row[index]])


@require_GET
@analyst_required
def run_status(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(ReportRun.objects.defer("rows", "columns"), pk=run_id)
    return JsonResponse(
        {
            "id": run.pk,
            "status": run.status,
            # What the page shows, in the analyst's language: the script adds no words of its own.
            "status_label": str(run.get_status_display()),
            "phase": str(run_phase_text(run)),
            "progress": run.progress,
            "finished": run.is_finished,
            "error": run.error,
            "row_count": run.row_count,
        }
    )


def run_phase_text(run: ReportRun) -> str:
    """One line under the status saying what is happening now."""
    if run.status == RunStatus.QUEUED:
        return gettext("Waiting to start…")
    if run.status == RunStatus.RUNNING:
        return gettext("Running the query: %(percent)s%% done") % {"percent": run.progress}
    if run.status == RunStatus.SUCCEEDED:
        return ngettext("Done: %(count)s row.", "Done: %(count)s rows.", run.row_count) % {"count": run.row_count}
    return gettext("The run failed.")


@require_GET
@analyst_required
def run_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(ReportRun.objects.select_related("definition"), pk=run_id)
    if run.status != "succeeded":
        return HttpResponse(gettext("This run has no results."), status=409, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{run.definition.slug}-run-{run.pk}.csv"'
    response.write(run_csv_text(run))
    return response
