from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from analytics.catalogue import REPORTS
from analytics.models import ReportDefinition, ReportRun, RunStatus
from tests.analytics.conftest import FIRST_DAY, LAST_DAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_run(analyst_user) -> ReportRun:
    return ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="top-users-by-tokens"),
        params={"start_date": "2026-11-20", "end_date": "2026-11-24", "model_id": None, "group": None},
        status=RunStatus.SUCCEEDED, progress=100, columns=["user_sub", "requests", "total_tokens", "cost_usd"],
        rows=[[analyst_user.sub, 12, 3400, 0.25], ['=HYPERLINK("x")', 1, 10, 0.0]], row_count=2, engine="duckdb",
        requested_by=analyst_user,
    )


def page_urls(run: ReportRun) -> list[str]:
    return [
        reverse("analytics:report_list"),
        reverse("analytics:report_detail", args=["top-users-by-tokens"]),
        reverse("analytics:run_detail", args=[run.pk]),
        reverse("analytics:run_csv", args=[run.pk]),
        reverse("analytics:run_status", args=[run.pk]),
    ]


def test_anonymous_visitors_are_sent_to_sign_in(client, finished_run):
    for url in page_urls(finished_run):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    response = client.post(reverse("analytics:report_run_now", args=["top-users-by-tokens"]))
    assert response.status_code == 302
    assert not ReportRun.objects.exclude(pk=finished_run.pk).exists()


def test_plain_users_are_forbidden(client, alice, finished_run):
    client.force_login(alice)
    for url in page_urls(finished_run):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("analytics:report_run_now", args=["top-users-by-tokens"])).status_code == 403


@pytest.mark.parametrize("persona", ["analyst_user", "admin_user"])
def test_analysts_and_admins_see_the_report_list(client, persona, request, finished_run):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(reverse("analytics:report_list"))
    body = response.content.decode()
    assert response.status_code == 200
    for title in ReportDefinition.objects.values_list("title", flat=True):
        assert title in body
    assert body.count(">Run now</button>") == len(REPORTS)
    assert reverse("analytics:run_detail", args=[finished_run.pk]) in body  # the latest run of that report


def test_run_now_queues_a_run_with_default_parameters_and_shows_it(client, analyst_user, lake_records,
                                                                  django_capture_on_commit_callbacks):
    client.force_login(analyst_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analytics:report_run_now", args=["errors-by-type"]))
    run = ReportRun.objects.get(definition__slug="errors-by-type")
    assert response.status_code == 302
    assert response["Location"] == reverse("analytics:run_detail", args=[run.pk])
    assert run.requested_by == analyst_user
    assert run.status == RunStatus.SUCCEEDED


def test_the_filter_form_runs_the_report_for_the_chosen_period(client, analyst_user, lake_records,
                                                               django_capture_on_commit_callbacks):
    client.force_login(analyst_user)
    form = {
        "start_date": FIRST_DAY.isoformat(),
        "end_date": LAST_DAY.isoformat(),
        "model_id": "demo-echo",
        "group": "Analysts",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("analytics:report_run_now", args=["conversations-per-user"]), form)
    run = ReportRun.objects.get()
    assert response.status_code == 302
    assert run.params == {
        "start_date": "2026-11-20",
        "end_date": "2026-11-24",
        "model_id": "demo-echo",
        "group": "Analysts",
        "time_zone": "UTC",
    }
    detail = client.get(reverse("analytics:report_detail", args=["conversations-per-user"])).content.decode()
    assert f"#{run.pk}" in detail
    assert "demo-echo" in detail
    assert "Succeeded" in detail


def test_a_run_page_shows_its_sql_with_literals_in_the_chosen_time_zone(client, analyst_user, lake_records,
                                                                        django_capture_on_commit_callbacks):
    import html
    import re

    client.force_login(analyst_user)
    form = {"start_date": "2026-11-21", "end_date": "2026-11-21", "time_zone": "Asia/Seoul"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("analytics:report_run_now", args=["errors-by-type"]), form)
    run = ReportRun.objects.get()
    page = client.get(run.get_absolute_url()).content.decode()
    shown = html.unescape(re.search(r'<pre id="run-sql">(.*?)</pre>', page, re.S).group(1))
    assert shown == run.sql
    assert "(Asia/Seoul)" in page
    assert "ts >= CAST('2026-11-20 15:00:00' AS TIMESTAMP)" in shown
    assert not re.search(r":[a-z_]+\b", shown)


def test_invalid_filters_are_shown_back_without_a_run(client, analyst_user):
    client.force_login(analyst_user)
    response = client.post(
        reverse("analytics:report_run_now", args=["errors-by-type"]),
        {"start_date": "2026-11-24", "end_date": "2026-11-20", "model_id": "bad model"},
    )
    assert response.status_code == 400
    assert "start date must be on or before" in response.content.decode()
    assert not ReportRun.objects.exists()


def test_the_run_page_shows_the_table_and_the_chart_data(client, analyst_user, finished_run):
    client.force_login(analyst_user)
    body = client.get(reverse("analytics:run_detail", args=[finished_run.pk])).content.decode()
    assert "<th>total_tokens</th>" in body
    assert "<td>3400</td>" in body
    assert 'id="chart-data"' in body
    assert "analytics/charts.js" in body
    assert f'"{analyst_user.sub}": "ana"' in body  # chart labels show usernames, not subs
    assert reverse("analytics:run_csv", args=[finished_run.pk]) in body


def test_a_failed_run_shows_its_error(client, analyst_user, finished_run):
    ReportRun.objects.filter(pk=finished_run.pk).update(status=RunStatus.FAILED, error="Athena query q-1 failed: boom")
    client.force_login(analyst_user)
    body = client.get(reverse("analytics:run_detail", args=[finished_run.pk])).content.decode()
    assert "Athena query q-1 failed: boom" in body
    assert 'id="chart-data"' not in body
    assert client.get(reverse("analytics:run_csv", args=[finished_run.pk])).status_code == 409


def test_csv_download(client, analyst_user, finished_run):
    client.force_login(analyst_user)
    response = client.get(reverse("analytics:run_csv", args=[finished_run.pk]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="top-users-by-tokens-run-{finished_run.pk}.csv"'
    assert list(csv.reader(io.StringIO(response.content.decode()))) == [
        ["user_sub", "requests", "total_tokens", "cost_usd"],
        [analyst_user.sub, "12", "3400", "0.25"],
        ["'=HYPERLINK(\"x\")", "1", "10", "0.0"],  # a formula is neutralised for spreadsheets
    ]


def test_status_json_reports_progress(client, analyst_user, finished_run):
    ReportRun.objects.filter(pk=finished_run.pk).update(status=RunStatus.RUNNING, progress=40)
    client.force_login(analyst_user)
    assert client.get(reverse("analytics:run_status", args=[finished_run.pk])).json() == {
        "id": finished_run.pk, "status": "running", "status_label": "Running", "phase": "Running the query: 40% done",
        "progress": 40, "finished": False, "error": "", "row_count": 2,
    }
    assert 'id="run-progress"' in client.get(reverse("analytics:run_detail", args=[finished_run.pk])).content.decode()


def test_analysts_may_view_but_not_change_reports_in_the_admin(client, analyst_user, admin_user, finished_run):
    client.force_login(analyst_user)
    assert client.get("/admin/analytics/reportdefinition/").status_code == 200
    assert client.get(f"/admin/analytics/reportrun/{finished_run.pk}/change/").status_code == 200
    assert client.get("/admin/analytics/reportdefinition/add/").status_code == 403
    client.force_login(admin_user)
    assert client.get("/admin/analytics/reportschedule/").status_code == 200
    assert client.get("/admin/analytics/reportdefinition/add/").status_code == 200
