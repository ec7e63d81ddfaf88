"""AthenaEngine through boto3 against moto in server mode (real HTTP, real botocore parsing).

moto's Athena runs no SQL: results are canned through its `/moto-api/static/athena/query-results`
endpoint, and query states are stepped through its state manager. Two things moto cannot do are
tested with botocore's Stubber instead: paging (moto returns every row in one page and never a
NextToken) and a FAILED query (moto's executions only go QUEUED → RUNNING → SUCCEEDED).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from analytics.engines.athena import AthenaEngine, athena_client
from analytics.engines.base import ReportEngineError
from tests.analytics.conftest import REGION, moto_api

OUTPUT = "s3://gateway-athena-results/reports/"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}




class FakeClock:
    """Time the engine sees; its sleeps advance it instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_engine(client, clock: FakeClock, **overrides) -> AthenaEngine:
    options = {
        "workgroup": "reports-wg", "database": "ai_gateway", "output_location": OUTPUT, "region": REGION,
        "client": client, "clock": clock, "sleep": clock.sleep, "first_poll_seconds": 0.25, "max_poll_seconds": 1.0,
    }
    options.update(overrides)
    return AthenaEngine(**options)


def cell(value: str | None) -> dict:
    return {} if value is None else {"VarCharValue": value}


COLUMNS = [
    {"Name": "day", "Type": "date"}, {"Name": "model_id", "Type": "varchar"},
    {"Name": "total_tokens", "Type": "bigint"}, {"Name": "hit_rate", "Type": "double"},
    {"Name": "estimated", "Type": "boolean"}, {"Name": "cost_usd", "Type": "decimal(12,6)"},
]
HEADER = {"Data": [cell(c["Name"]) for c in COLUMNS]}


def test_runs_a_query_with_workgroup_database_and_output_location(athena, moto_endpoint):
    rows = [
        HEADER,
        {"Data": [cell("2026-11-20"), cell("demo-echo"), cell("1500"), cell("0.25"), cell("false"), cell("0.012500")]},
        {"Data": [cell("2026-11-21"), cell("demo-echo"), cell("20"), cell(None), cell("true"), cell(None)]},
    ]
    moto_api(moto_endpoint, "static/athena/query-results",
             {"region": REGION, "results": [{"rows": rows, "column_info": COLUMNS}]})
    # Stay QUEUED for two polls and RUNNING for two: the engine must keep polling, backing off.
    moto_api(moto_endpoint, "state-manager/set-transition",
             {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}})
    clock, progress = FakeClock(), []

    result = make_engine(athena, clock).run("SELECT 1", on_progress=progress.append)

    assert result.columns == [c["Name"] for c in COLUMNS]
    assert result.rows == [
        [date(2026, 11, 20), "demo-echo", 1500, 0.25, False, Decimal("0.0125")],
        [date(2026, 11, 21), "demo-echo", 20, None, True, None],
    ]
    execution = athena.get_query_execution(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["WorkGroup"] == "reports-wg"
    assert execution["QueryExecutionContext"] == {"Database": "ai_gateway"}
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)
    assert execution["Query"] == "SELECT 1"
    assert clock.sleeps[:3] == [0.25, 0.5, 1.0]
    assert max(clock.sleeps) == 1.0
    assert progress[0] == 10
    assert progress[-1] == 80


def test_a_query_past_the_time_limit_is_stopped(athena, moto_endpoint):
    moto_api(moto_endpoint, "state-manager/set-transition",
             {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 10_000}})
    clock = FakeClock()
    engine = make_engine(athena, clock, time_limit_seconds=5)

    with pytest.raises(ReportEngineError, match=r"ran longer than 5 s and was stopped") as raised:
        engine.run("SELECT 1")

    state = athena.get_query_execution(QueryExecutionId=raised.value.query_id)["QueryExecution"]["Status"]["State"]
    assert state == "CANCELLED"
    assert clock.now <= 5


def test_an_unknown_workgroup_is_a_clear_error(athena):
    with pytest.raises(ReportEngineError, match="Athena did not accept the query"):
        make_engine(athena, FakeClock(), workgroup="no-such-wg").run("SELECT 1")


def stubbed_client():
    client = boto3.client("athena", region_name=REGION, **CREDENTIALS)
    return client, Stubber(client)


def test_results_are_paged_with_next_token_and_the_header_skipped_once():
    client, stub = stubbed_client()
    columns = [{"Name": "user_sub", "Type": "varchar"}, {"Name": "requests", "Type": "bigint"}]
    meta = {"ColumnInfo": columns}
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"},
                      {"QueryString": "SELECT 2", "WorkGroup": "wg", "QueryExecutionContext": {"Database": "db"},
                       "ResultConfiguration": {"OutputLocation": OUTPUT}})
    stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}})
    header = {"Data": [cell("user_sub"), cell("requests")]}
    page = lambda subs: [{"Data": [cell(s), cell(str(i))]} for i, s in subs]  # noqa: E731
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [header, *page([(1, "a"), (2, "b")])], "ResultSetMetadata": meta}, "NextToken": "t1"},
        {"QueryExecutionId": "q-1", "MaxResults": 3},
    )
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": page([(3, "c"), (4, "d"), (5, "e")]), "ResultSetMetadata": meta}, "NextToken": "t2"},
        {"QueryExecutionId": "q-1", "MaxResults": 3, "NextToken": "t1"},
    )
    stub.add_response("get_query_results",
                      {"ResultSet": {"Rows": page([(6, "f")]), "ResultSetMetadata": meta}},
                      {"QueryExecutionId": "q-1", "MaxResults": 3, "NextToken": "t2"})
    with stub:
        result = make_engine(client, FakeClock(), workgroup="wg", database="db", page_size=3).run("SELECT 2")
        stub.assert_no_pending_responses()
    assert result.rows == [["a", 1], ["b", 2], ["c", 3], ["d", 4], ["e", 5], ["f", 6]]


@pytest.mark.parametrize(("state", "verb"), [("FAILED", "failed"), ("CANCELLED", "was cancelled")])
def test_a_failed_or_cancelled_query_reports_athenas_reason(state, verb):
    client, stub = stubbed_client()
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-9"})
    stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}})
    reason = "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    stub.add_response("get_query_execution",
                      {"QueryExecution": {"Status": {"State": state, "StateChangeReason": reason}}})
    with stub, pytest.raises(ReportEngineError) as raised:
        make_engine(client, FakeClock()).run("SELECT nope")
    assert str(raised.value) == f"Athena query q-9 {verb}: {reason}"
    assert raised.value.query_id == "q-9"


def test_the_default_client_is_created_lazily_with_timeouts_and_retries():
    engine = AthenaEngine(workgroup="wg", database="db", output_location=OUTPUT, region="eu-west-1",
                          endpoint_url="http://127.0.0.1:9")
    assert engine._client is None  # nothing built at construction
    config = engine.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 30)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 6}
    assert engine.client is athena_client("eu-west-1", "http://127.0.0.1:9")
