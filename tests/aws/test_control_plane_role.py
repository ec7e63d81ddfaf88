"""Django's store and report calls, run as the control plane's synthesized managed policy."""
from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from dataplane.stores.base import PreparedAnswer, TokenCount
from tests.aws.twin import CHAT_HANDLER, CONTROL_PLANE, AwsTwin

pytestmark = pytest.mark.django_db


@pytest.fixture
def twin_store(aws_twin: AwsTwin, monkeypatch):
    """Django's store is the twin's DynamoDB tables for this test."""
    store = aws_twin.store()
    monkeypatch.setattr("quotas.store.store_get", lambda: store)
    return store


@pytest.fixture
def standard_policy(db):
    from quotas.models import QuotaPolicy

    return QuotaPolicy.objects.create(
        name="Standard", is_default=True, ten_minute_total=20_000, monthly_total=1_000_000
    )


def spend(twin: AwsTwin, store, user, tokens: TokenCount) -> None:
    """Tokens used by a chat turn (as the chat role, like the Lambda)."""
    from quotas.selectors import effective_policy_compute, usage_charges

    charges = usage_charges(policy=effective_policy_compute(user=user))
    with twin.acting_as(CHAT_HANDLER):
        store.settle(reservation=store.reserve(sub=user.sub, charges=charges, estimate=tokens), actual=tokens)


def table_arn(twin: AwsTwin, name: str) -> str:
    return f"arn:aws:dynamodb:{twin.template.region}:{twin.template.account}:table/{name}"


def test_policy_publish_live_usage_reset_and_cache_purge_as_the_control_plane(
    aws_twin: AwsTwin, twin_store, standard_policy, alice
) -> None:
    from quotas.selectors import live_usage_top, policy_drift_list, user_usage
    from quotas.services import answer_cache_purge, outbox_drain, policy_publish_request, usage_window_reset

    with aws_twin.acting_as(CONTROL_PLANE):
        policy_publish_request(users=[alice])
        outbox_drain()
    assert twin_store.policy_get(alice.sub).ten_minute.total == 20_000
    spend(aws_twin, twin_store, alice, TokenCount(input=300, output=45))

    with aws_twin.acting_as(CONTROL_PLANE):
        ten_minute, month = user_usage(user=alice)  # the admin's live usage of one user
        top = live_usage_top()
        assert policy_drift_list() == []
        usage_window_reset(user=alice, window="10m")
        after_reset, _ = user_usage(user=alice)
        answer_cache_purge()
        twin_store.prepared_put(PreparedAnswer(question_key="q", model_id="", text="Ask IT."))
        twin_store.prepared_delete(question_key="q", model_id="")

    assert (ten_minute.total, month.total, after_reset.total) == (345, 345, 0)
    assert [row.user for row in top.ten_minute] == [alice]
    assert aws_twin.denials == []
    usage = table_arn(aws_twin, aws_twin.resources.usage_table)
    made = {(d.action, d.resource) for d in aws_twin.decisions if d.principal == CONTROL_PLANE}
    assert {("dynamodb:BatchGetItem", usage), ("dynamodb:DeleteItem", usage), ("dynamodb:Scan", usage)} <= made


@pytest.mark.parametrize("action", ["dynamodb:BatchGetItem", "dynamodb:DeleteItem"])
def test_negative_control_the_old_control_plane_policy_fails_live_usage_and_reset(
    aws_twin: AwsTwin, twin_store, standard_policy, alice, action: str
) -> None:
    from dataplane.errors import StoreUnavailableError
    from quotas.selectors import user_usage
    from quotas.services import usage_window_reset

    statements = aws_twin.principal(CONTROL_PLANE).statements
    old = [
        {**s, "Action": [a for a in s["Action"] if a != action]} if s.get("Sid") == "UsageTable" else s
        for s in statements
    ]
    call: Callable[[], object]
    if action == "dynamodb:BatchGetItem":
        call = functools.partial(user_usage, user=alice)
    else:
        call = functools.partial(usage_window_reset, user=alice, window="month")
    with (
        aws_twin.statements_replaced(CONTROL_PLANE, old),
        aws_twin.acting_as(CONTROL_PLANE),
        pytest.raises(StoreUnavailableError, match="AccessDeniedException"),
    ):
        call()
    assert [d.action for d in aws_twin.denials] == [action]


def athena_engine(aws_twin: AwsTwin):
    """The report engine as Django builds it, on the twin's work group and buckets."""
    from analytics.engines.athena import AthenaEngine

    resources = aws_twin.resources
    return AthenaEngine(
        workgroup=resources.workgroup,
        database=resources.database,
        output_location=resources.results_location,
        region=aws_twin.template.region,
        client=aws_twin.client("athena"),
        sleep=lambda seconds: None,
    )


def test_a_report_runs_on_athena_as_the_control_plane(aws_twin: AwsTwin) -> None:
    engine = athena_engine(aws_twin)
    with aws_twin.acting_as(CONTROL_PLANE):
        result = engine.run("SELECT model_id, count(*) AS turns FROM requests GROUP BY 1")
    assert result.query_id
    assert aws_twin.denials == []
    made = {d.action for d in aws_twin.decisions}
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "glue:GetTable",
            "s3:PutObject"} <= made


def test_the_chat_role_cannot_run_reports(aws_twin: AwsTwin) -> None:
    from analytics.engines.base import ReportEngineError

    engine = athena_engine(aws_twin)
    with aws_twin.acting_as(CHAT_HANDLER), pytest.raises(ReportEngineError, match="AccessDeniedException"):
        engine.run("SELECT 1")


def test_a_group_report_joining_the_published_tables_runs_as_the_control_plane(
    aws_twin: AwsTwin, settings, monkeypatch, alice
) -> None:
    """The built-in report's own SQL (a CTE, the users and group_members joins) and the directory
    publish before it: every call allowed by the control plane's synthesized policy."""
    from datetime import UTC, datetime

    from django.contrib.auth.models import Group

    from analytics import directory
    from analytics.catalogue import REPORTS
    from analytics.params import BoundFilters, report_params_parse, report_sql_bind

    Group.objects.create(name="Pilots").user_set.add(alice)
    resources = aws_twin.resources
    settings.ANALYTICS_ENGINE = "athena"
    settings.GATEWAY_LAKE_BUCKET, settings.GATEWAY_LAKE_PREFIX = resources.lake_bucket, "lake/"
    monkeypatch.setattr(directory, "_s3_client", lambda region: aws_twin.client("s3"))
    report = next(r for r in REPORTS if r["slug"] == "top-users-by-tokens")
    params = report_params_parse({"days": 7, "group": "Pilots"}, now=datetime.now(UTC), default_time_zone="Asia/Seoul")
    engine = athena_engine(aws_twin)
    with aws_twin.acting_as(CONTROL_PLANE):
        directory.directory_publish()
        engine.run(report_sql_bind(report["sql"], BoundFilters(params=params)))
    assert aws_twin.denials == []
    looked_up = {d.resource.rsplit("/", 1)[-1] for d in aws_twin.decisions if d.action == "glue:GetTable"}
    assert {"requests", "users", "group_members"} <= looked_up
    assert "scoped" not in looked_up
    published = aws_twin.client("s3").get_object(
        Bucket=resources.lake_bucket, Key="lake/group_members/group_members.csv"
    )
    assert f'"{alice.sub}","Pilots"' in published["Body"].read().decode()
