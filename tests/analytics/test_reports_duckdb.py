"""Every built-in report, run through the service on DuckDB over a generated Parquet lake, returns
exactly the figures computed independently in Python from the same records, in UTC and in
Asia/Seoul, including turns a second either side of midnight in both zones."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from analytics.catalogue import REPORTS
from analytics.lake import DEMO_MODELS, lake_timestamp, lake_write_records, synthetic_records
from analytics.models import ReportDefinition, ReportRun, RunStatus
from analytics.services import report_run_request
from tests.analytics import expected
from tests.analytics.conftest import DAYS, FIRST_DAY, LAST_DAY, USER_SUBS
from tests.factories import UserFactory

SLUGS = [report["slug"] for report in REPORTS]
ZONES = ["UTC", "Asia/Seoul"]


@pytest.fixture(autouse=True)
def usernames():
    """Subs the reports show by username: the users created here are the published ones."""
    expected.USERNAMES.clear()
    expected.GROUPS.clear()
    yield expected.USERNAMES
    expected.USERNAMES.clear()
    expected.GROUPS.clear()


def run_report(slug: str, params: dict, django_capture_on_commit_callbacks) -> ReportRun:
    definition = ReportDefinition.objects.get(slug=slug)
    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager in tests
        run = report_run_request(definition=definition, params=params, requested_by=None)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run


def assert_rows_match(run: ReportRun, want: list[list]) -> None:
    assert len(run.rows) == len(want), (run.rows, want)
    for got_row, want_row in zip(run.rows, want, strict=True):
        for column, got, wanted in zip(run.columns, got_row, want_row, strict=True):
            if column in expected.ROUNDED_COLUMNS:
                assert got == pytest.approx(wanted, abs=expected.ROUNDED_COLUMNS[column]), (column, got_row, want_row)
            else:
                assert got == wanted, (column, got_row, want_row)


def test_the_generated_lake_covers_what_the_reports_measure(lake_records):
    outcomes = {r["outcome"] for r in lake_records}
    assert {"ok", "refused", "error"} <= outcomes
    assert {r["model_id"] for r in lake_records} == set(DEMO_MODELS)
    assert {r["user_sub"] for r in lake_records} == set(USER_SUBS)
    assert len({expected.record_day(r, "UTC") for r in lake_records}) == DAYS
    assert {"hit", "prepared"} <= {r["cache"] for r in lake_records}
    assert {"10m", "month", None} <= {r["refusal_window"] for r in lake_records if r["outcome"] == "refused"}


@pytest.mark.django_db
@pytest.mark.parametrize("time_zone", ZONES)
@pytest.mark.parametrize("slug", SLUGS)
def test_report_figures_over_the_whole_lake(
    slug, time_zone, lake_records, usernames, django_capture_on_commit_callbacks
):
    UserFactory(username="ann", sub=USER_SUBS[0], groups=["Pilots"])
    UserFactory(username="ben", sub=USER_SUBS[1], groups=["Pilots", "Support"])
    usernames.update({USER_SUBS[0]: "ann", USER_SUBS[1]: "ben"})
    expected.GROUPS.update({USER_SUBS[0]: {"Pilots"}, USER_SUBS[1]: {"Pilots", "Support"}})
    run = run_report(
        slug,
        {"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat(), "time_zone": time_zone},
        django_capture_on_commit_callbacks,
    )
    want = expected.EXPECTED_BY_SLUG[slug](
        expected.in_scope(lake_records, start=FIRST_DAY, end=LAST_DAY, time_zone=time_zone)
    )
    assert want, "the fixture must give every report something to count"
    assert run.row_count == len(want)
    assert run.engine == "duckdb"
    assert run.engine_query_id.startswith("duckdb-")
    assert_rows_match(run, want)


@pytest.mark.django_db
@pytest.mark.parametrize("time_zone", ZONES)
@pytest.mark.parametrize("slug", SLUGS)
def test_report_figures_with_model_group_and_date_filters(
    slug, time_zone, lake_records, usernames, django_capture_on_commit_callbacks
):
    UserFactory(username="ann", sub=USER_SUBS[0], groups=["Pilots", "Others"])
    UserFactory(username="cat", sub=USER_SUBS[2], groups=["Pilots"])
    UserFactory(username="ben", sub=USER_SUBS[1], groups=["Others"])  # not in the group
    usernames.update({USER_SUBS[0]: "ann", USER_SUBS[1]: "ben", USER_SUBS[2]: "cat"})
    expected.GROUPS.update({USER_SUBS[0]: {"Pilots", "Others"}, USER_SUBS[2]: {"Pilots"}, USER_SUBS[1]: {"Others"}})
    start, end, model = date(2026, 11, 21), date(2026, 11, 23), DEMO_MODELS[1]
    run = run_report(
        slug,
        {"start_date": start.isoformat(), "end_date": end.isoformat(), "model_id": model, "group": "Pilots",
         "time_zone": time_zone},
        django_capture_on_commit_callbacks,
    )
    scope = expected.in_scope(
        lake_records, start=start, end=end, model_id=model, subs=[USER_SUBS[0], USER_SUBS[2]], time_zone=time_zone
    )
    assert scope
    assert len(scope) < len(lake_records) / 4
    assert_rows_match(run, expected.EXPECTED_BY_SLUG[slug](scope))


def _turn_at(moment: datetime, sub: str, request_id: str) -> dict:
    (record,) = synthetic_records(first_day=FIRST_DAY, days=1, user_subs=[sub], turns_per_day=1, seed=len(request_id))
    return {
        **record,
        "request_id": request_id,
        "ts": lake_timestamp(moment),
        "outcome": "ok",
        "model_id": DEMO_MODELS[1],
    }


@pytest.mark.django_db
@pytest.mark.parametrize("time_zone", ZONES)
def test_turns_either_side_of_midnight_count_on_their_own_local_day(
    time_zone, lake_dir, django_capture_on_commit_callbacks
):
    """A second before and after midnight in UTC (Seoul 09:00) and in Seoul (UTC 15:00): each turn is
    on its own day in the report's zone, none is lost, none is counted twice."""
    utc_midnight = datetime(2026, 11, 21, tzinfo=UTC)
    seoul_midnight = datetime(2026, 11, 21, 15, tzinfo=UTC)  # 2026-11-22 00:00 in Seoul
    moments = [m + timedelta(seconds=delta) for m in (utc_midnight, seoul_midnight) for delta in (-1, 0)]
    records = [_turn_at(moment, USER_SUBS[0], f"r{n}") for n, moment in enumerate(moments)]
    lake_write_records(lake_dir, records)
    run = run_report(
        "tokens-cost-by-model",
        {"start_date": "2026-11-20", "end_date": "2026-11-23", "time_zone": time_zone},
        django_capture_on_commit_callbacks,
    )
    by_day = {row[0]: row[2] for row in run.rows}
    # Seoul is UTC+9: 23:59:59 UTC is 08:59:59 next day there, 15:00 UTC is its midnight.
    want = {"UTC": {"2026-11-20": 1, "2026-11-21": 3}, "Asia/Seoul": {"2026-11-21": 3, "2026-11-22": 1}}[time_zone]
    assert by_day == want
    # One day only: the partitions either side are read, the turns outside the local day are not.
    run = run_report(
        "tokens-cost-by-model",
        {"start_date": "2026-11-21", "end_date": "2026-11-21", "time_zone": time_zone},
        django_capture_on_commit_callbacks,
    )
    assert [(row[0], row[2]) for row in run.rows] == [("2026-11-21", want["2026-11-21"])]


@pytest.mark.django_db
def test_a_group_without_members_reports_nothing(lake_records, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import Group

    Group.objects.create(name="Nobody")
    run = run_report(
        "top-users-by-tokens",
        {"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat(), "group": "Nobody"},
        django_capture_on_commit_callbacks,
    )
    assert run.rows == []
    assert run.row_count == 0


@pytest.mark.django_db
@pytest.mark.parametrize("make_folder", [False, True], ids=["missing-lake", "empty-lake"])
@pytest.mark.parametrize("slug", SLUGS)
def test_an_empty_or_missing_lake_gives_empty_results(slug, make_folder, lake_dir, django_capture_on_commit_callbacks):
    if make_folder:
        (lake_dir / "requests" / "dt=2026-11-01").mkdir(parents=True)
    run = run_report(slug, {"start_date": "2026-11-01", "end_date": "2026-11-30"}, django_capture_on_commit_callbacks)
    assert run.rows == []
    assert run.columns  # the typed empty table still gives the report's columns


@pytest.mark.django_db
def test_seeded_definitions_are_the_catalogue():
    stored = {d.slug: d for d in ReportDefinition.objects.all()}
    for report in REPORTS:
        assert stored[report["slug"]].sql == report["sql"].strip()
        assert stored[report["slug"]].schedule.periodic_task.task == "analytics.tasks.report_schedule_fire"


@pytest.mark.django_db
def test_a_report_sees_turns_still_buffered_in_this_process(lake_dir, django_capture_on_commit_callbacks):
    from dataplane.telemetry.record import RequestRecord
    from dataplane.telemetry.sinks import LakeSink

    sink = LakeSink(lake_dir, max_records=1000, max_age_seconds=3600, start_timer=lambda seconds, callback: None)
    sink.emit(RequestRecord(request_id="buffered", ts=datetime(2026, 11, 21, 8, tzinfo=UTC), user_sub="sub-x",
                            entry="channels", model_id=DEMO_MODELS[1], input_tokens=7, output_tokens=3))
    assert not list(lake_dir.rglob("*.parquet"))
    run = run_report("tokens-cost-by-model", {"start_date": "2026-11-21", "end_date": "2026-11-21"},
                     django_capture_on_commit_callbacks)
    assert [(row[0], row[1], row[2], row[5]) for row in run.rows] == [("2026-11-21", DEMO_MODELS[1], 1, 10)]
