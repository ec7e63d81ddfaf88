from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from analytics import services
from analytics.catalogue import REPORTS
from analytics.models import ReportDefinition, ReportRun, ReportSchedule, RunStatus
from analytics.params import ReportParamsError
from analytics.schedules import REAP_TASK, REAP_TASK_NAME
from gateway_project.celery import app as celery_app
from tests.analytics.conftest import FIRST_DAY, LAST_DAY, REGION, moto_api

pytestmark = pytest.mark.django_db
WHOLE_LAKE = {"start_date": FIRST_DAY.isoformat(), "end_date": LAST_DAY.isoformat()}


def definition(slug: str = "errors-by-type") -> ReportDefinition:
    return ReportDefinition.objects.get(slug=slug)


def test_a_request_is_queued_and_enqueued_only_after_commit(
    lake_records, analyst_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.report_run_request(definition=definition(), params=WHOLE_LAKE, requested_by=analyst_user)
    assert run.status == RunStatus.QUEUED
    assert run.requested_by == analyst_user
    assert run.params == {**WHOLE_LAKE, "model_id": None, "group": None, "time_zone": "UTC"}
    assert len(callbacks) == 1
    callbacks[0]()  # what the commit does: the (eager) task runs
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.progress == 100
    assert run.started_at <= run.finished_at
    assert run.duration_ms is not None


def test_invalid_parameters_create_no_run(analyst_user):
    with pytest.raises(ReportParamsError, match="on or before"):
        services.report_run_request(
            definition=definition(),
            params={"start_date": "2026-11-02", "end_date": "2026-11-01"},
            requested_by=analyst_user,
        )
    with pytest.raises(ReportParamsError, match="no group named"):
        services.report_run_request(
            definition=definition(), params={**WHOLE_LAKE, "group": "Ghosts"}, requested_by=None
        )
    assert not ReportRun.objects.exists()


def queued_run(slug: str = "errors-by-type", **fields) -> ReportRun:
    return ReportRun.objects.create(
        definition=definition(slug), params={**WHOLE_LAKE, "model_id": None, "group": None}, **fields
    )


def test_an_engine_error_fails_the_run_with_its_message(lake_records):
    broken = ReportDefinition.objects.create(
        slug="broken",
        title="Broken",
        sql="SELECT no_such_column FROM requests WHERE date(ts) >= CAST(:start_date AS date)",
        x_column="a",
        y_column="b",
    )
    run = ReportRun.objects.create(definition=broken, params=WHOLE_LAKE)
    run = services.report_run_execute(run_id=run.pk)
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("DuckDB could not run the report:")
    assert "no_such_column" in run.error
    assert run.finished_at is not None
    assert run.engine == "duckdb"


def test_an_unknown_engine_setting_fails_the_run_clearly(settings, lake_records):
    settings.ANALYTICS_ENGINE = "bigquery"
    run = services.report_run_execute(run_id=queued_run().pk)
    assert run.status == RunStatus.FAILED
    assert "Unknown ANALYTICS_ENGINE 'bigquery'" in run.error


def test_a_finished_run_is_not_run_again(lake_records):
    run = queued_run(status=RunStatus.FAILED, error="reaped")
    services.report_run_execute(run_id=run.pk)
    run.refresh_from_db()
    # Had the query run, the lake's rows, an engine and a start time would be on the row.
    assert (run.status, run.error, run.started_at) == (RunStatus.FAILED, "reaped", None)
    assert (run.engine, run.row_count) == ("", 0)
    assert run.rows == []


def test_a_redelivered_run_left_running_by_a_dead_worker_is_run_to_the_end(lake_records):
    run = queued_run(status=RunStatus.RUNNING, started_at=timezone.now() - timedelta(minutes=1))
    run = services.report_run_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.row_count > 0


def test_the_reaper_fails_only_runs_past_every_time_limit():
    now = timezone.now()
    long_ago = now - services.REAP_AFTER - timedelta(seconds=1)
    stuck_running = queued_run(status=RunStatus.RUNNING, started_at=long_ago)
    stuck_queued = queued_run()
    ReportRun.objects.filter(pk=stuck_queued.pk).update(created_at=long_ago)
    busy = queued_run(status=RunStatus.RUNNING, started_at=now - timedelta(minutes=2))
    fresh = queued_run()
    done = queued_run(status=RunStatus.SUCCEEDED, started_at=long_ago)

    assert services.runs_reap_stale(now=now) == 2

    stuck_running.refresh_from_db()
    assert stuck_running.status == RunStatus.FAILED
    assert stuck_running.finished_at == now
    assert "the worker running this report stopped" in stuck_running.error
    assert ReportRun.objects.get(pk=stuck_queued.pk).status == RunStatus.FAILED
    assert [ReportRun.objects.get(pk=r.pk).status for r in (busy, fresh, done)] == ["running", "queued", "succeeded"]
    assert services.REAP_AFTER.total_seconds() > services.RUN_HARD_LIMIT_SECONDS


def test_the_reaper_and_the_run_task_are_wired_for_beat_and_lost_workers():
    reaper = PeriodicTask.objects.get(name=REAP_TASK_NAME)
    assert reaper.task == REAP_TASK
    assert reaper.enabled
    assert reaper.interval.every == 5
    run_task = celery_app.tasks["analytics.tasks.report_run_task"]
    assert run_task.acks_late
    assert run_task.reject_on_worker_lost
    assert (run_task.soft_time_limit, run_task.time_limit) == (
        services.RUN_SOFT_LIMIT_SECONDS,
        services.RUN_HARD_LIMIT_SECONDS,
    )
    assert REAP_TASK in celery_app.tasks


def test_every_seeded_report_has_a_daily_beat_task():
    for schedule in ReportSchedule.objects.select_related("definition", "periodic_task__crontab"):
        task = schedule.periodic_task
        assert schedule.frequency == "daily"
        assert task.enabled
        assert task.args == f"[{schedule.definition_id}]"
        assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week, task.crontab.day_of_month) == (
            "0",
            "2",
            "*",
            "*",
        )
    assert ReportSchedule.objects.count() == ReportDefinition.objects.count() == len(REPORTS)


def test_saving_a_schedule_updates_its_beat_task():
    schedule = definition().schedule
    schedule.frequency, schedule.hour_utc = "weekly", 6
    services.report_schedule_save(schedule=schedule)
    crontab = PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab
    assert (crontab.hour, crontab.day_of_week, crontab.day_of_month) == ("6", "1", "*")
    schedule.enabled = False
    services.report_schedule_save(schedule=schedule)
    assert not PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled


def test_a_daily_schedule_reports_the_previous_day(django_capture_on_commit_callbacks, lake_dir):
    with django_capture_on_commit_callbacks(execute=True):
        run = services.report_schedule_fire(definition_id=definition().pk)
    run.refresh_from_db()
    yesterday = services.lake_today() - timedelta(days=1)
    assert run.trigger == "schedule"
    assert run.requested_by is None
    assert (run.params["start_date"], run.params["end_date"]) == (yesterday.isoformat(), yesterday.isoformat())
    assert run.status == RunStatus.SUCCEEDED


def test_a_monthly_schedule_reports_the_previous_calendar_month_in_its_time_zone(
    settings, django_capture_on_commit_callbacks, lake_dir
):
    from datetime import UTC, datetime
    from unittest import mock

    settings.GATEWAY_REPORT_TIMEZONE = "UTC"
    schedule = definition().schedule
    schedule.frequency = "monthly"
    services.report_schedule_save(schedule=schedule)
    edited = definition()
    edited.default_params = {"days": 7, "time_zone": "Asia/Seoul"}
    edited.save()
    # 1 March 2027 02:00 UTC: in Seoul it is 11:00 on the 1st, so "previous month" is February.
    with (
        mock.patch("django.utils.timezone.now", return_value=datetime(2027, 3, 1, 2, tzinfo=UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = services.report_schedule_fire(definition_id=edited.pk)
    run.refresh_from_db()
    assert (run.params["start_date"], run.params["end_date"], run.params["time_zone"]) == (
        "2027-02-01", "2027-02-28", "Asia/Seoul"
    )


def test_the_default_period_includes_today(lake_dir):
    params = services.default_params_for(definition())
    assert params["end_date"] == services.lake_today().isoformat()


def test_seeding_again_fills_gaps_and_keeps_what_admins_edited(lake_dir):
    from importlib import import_module

    from django.apps import apps

    from analytics.seed import reports_seed

    edited = definition()
    edited.title, edited.default_params = "Errors (edited)", {"days": 30}
    edited.save()
    PeriodicTask.objects.filter(name=REAP_TASK_NAME).delete()
    reports_seed(apps)  # what post_migrate does after every migrate / flush
    edited.refresh_from_db()
    assert edited.title == "Errors (edited)"
    assert edited.default_params == {"days": 30}
    assert ReportDefinition.objects.count() == len(REPORTS)
    assert PeriodicTask.objects.filter(task__startswith="analytics.").count() == len(REPORTS) + 1

    import_module("analytics.migrations.0002_seed_reports").seed(apps, None)  # the migration refreshes the SQL
    edited.refresh_from_db()
    assert edited.title == "Errors by type"
    assert edited.default_params == {"days": 30}


def test_the_demo_lake_command_gives_reports_data(lake_dir, alice, bob, django_capture_on_commit_callbacks):
    call_command("generate_demo_lake", "--days", "3", "--turns-per-day", "20")
    files = sorted(lake_dir.rglob("*.parquet"))
    assert len(files) >= 3
    call_command("generate_demo_lake", "--if-empty")
    assert sorted(lake_dir.rglob("*.parquet")) == files
    with django_capture_on_commit_callbacks(execute=True):
        run = services.report_run_request(
            definition=definition("top-users-by-tokens"), params={"days": 3}, requested_by=None
        )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    # Usernames, not subs; and the demo's model ids are the seeded catalogue's.
    assert {row[0] for row in run.rows} <= {alice.username, bob.username}
    assert run.rows
    from quotas.demo import BEDROCK_MODELS, DEMO_MODEL

    catalogue = {DEMO_MODEL["model_id"], *(model[0] for model in BEDROCK_MODELS)}
    by_model = services.report_run_request(
        definition=definition("tokens-cost-by-model"), params={"days": 3}, requested_by=None
    )
    by_model = services.report_run_execute(run_id=by_model.pk)
    assert by_model.rows
    assert {row[1] for row in by_model.rows} <= catalogue


def test_a_run_on_athena_stores_typed_rows(
    settings, athena, moto_endpoint, monkeypatch, alice, django_capture_on_commit_callbacks
):
    import boto3

    from dataplane import aws

    aws.client.cache_clear()  # the clients below read AWS_ENDPOINT_URL_S3 when they are made
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket="lake-bucket")
    settings.GATEWAY_LAKE_BUCKET, settings.GATEWAY_LAKE_PREFIX = "lake-bucket", "lake/"
    settings.ANALYTICS_ENGINE = "athena"
    settings.ATHENA_WORKGROUP, settings.ATHENA_DATABASE = "reports-wg", "gateway_logs"
    settings.ATHENA_OUTPUT_LOCATION, settings.ATHENA_ENDPOINT_URL = "s3://results/analytics/", moto_endpoint
    settings.AWS_REGION = REGION
    columns = [
        {"Name": "day", "Type": "date"},
        {"Name": "model_id", "Type": "varchar"},
        {"Name": "cost_usd", "Type": "decimal(10,4)"},
    ]
    rows = [{"Data": [{"VarCharValue": c["Name"]} for c in columns]},
            {"Data": [{"VarCharValue": "2026-11-20"}, {"VarCharValue": "demo-echo"}, {"VarCharValue": "1.2500"}]}]
    moto_api(
        moto_endpoint,
        "static/athena/query-results",
        {"region": REGION, "results": [{"rows": rows, "column_info": columns}]},
    )

    with django_capture_on_commit_callbacks(execute=True):
        run = services.report_run_request(
            definition=definition("tokens-cost-by-model"), params=WHOLE_LAKE, requested_by=None
        )
    run.refresh_from_db()

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.engine, run.columns, run.rows) == (
        "athena",
        ["day", "model_id", "cost_usd"],
        [["2026-11-20", "demo-echo", 1.25]],
    )
    sent = athena.get_query_execution(QueryExecutionId=run.engine_query_id)["QueryExecution"]
    assert sent["WorkGroup"] == "reports-wg"
    assert sent["QueryExecutionContext"] == {"Database": "gateway_logs"}
    assert "BETWEEN '2026-11-20' AND '2026-11-24'" in sent["Query"]
    # The group tables the SQL joins were published where the Glue tables read them.
    users = s3.get_object(Bucket="lake-bucket", Key="lake/users/users.csv")["Body"].read().decode()
    assert f'"{alice.sub}","{alice.username}"' in users
    aws.client.cache_clear()


def test_deleting_a_schedule_removes_its_beat_task():
    schedule = definition().schedule
    task_id = schedule.periodic_task_id
    services.report_schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert not ReportSchedule.objects.filter(definition__slug="errors-by-type").exists()


def test_an_old_json_lake_converts_once_into_the_parquet_lake(lake_dir, django_capture_on_commit_callbacks):
    import gzip
    import json

    from analytics.lake import synthetic_records

    records = synthetic_records(first_day=FIRST_DAY, days=2, user_subs=["sub-old"], turns_per_day=30, seed=2)
    for record in records:
        hour = (
            lake_dir
            / f"year={record['ts'][:4]}/month={record['ts'][5:7]}/day={record['ts'][8:10]}/hour={record['ts'][11:13]}"
        )
        hour.mkdir(parents=True, exist_ok=True)
        with gzip.open(hour / "gateway-old.json.gz", "at") as handle:
            handle.write(json.dumps(record) + "\n")
    call_command("convert_json_lake")

    def turns_reported() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.report_run_request(
                definition=definition("error-refusal-rates"), params=WHOLE_LAKE, requested_by=None
            )
        run.refresh_from_db()
        return sum(row[1] for row in run.rows)

    assert turns_reported() == len(records) == 60
    call_command("convert_json_lake")  # after the report compacted the lake: nothing left to convert
    assert turns_reported() == 60
