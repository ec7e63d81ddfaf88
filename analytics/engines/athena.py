"""The production report engine: Amazon Athena through boto3.

One query: StartQueryExecution (work group, database, output location) → poll
GetQueryExecution with capped exponential back-off until a final state → page through
GetQueryResults (NextToken), skipping the header row Athena puts first on the first page, and
convert each cell with the type Athena declares in ResultSetMetadata. FAILED and CANCELLED
become a `ReportEngineError` carrying Athena's StateChangeReason; a query that outlives the
engine's time limit is stopped (StopQueryExecution) so it does not keep scanning and billing.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics.engines.base import ProgressCallback, QueryResult, ReportEngineError
from dataplane.aws import ClientSettings
from dataplane.aws import client as aws_client

_FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_INTEGER_TYPES = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOAT_TYPES = frozenset({"double", "float", "real"})


def athena_client(region: str, endpoint_url: str | None) -> Any:
    """One client per region/endpoint, created on first use (never at import time) and shared
    through `dataplane.aws.client`. Adaptive retries: Athena throttles bursts of polls."""
    settings = ClientSettings(
        region=region,
        endpoint_url=endpoint_url or None,
        connect_timeout=5,
        read_timeout=30,
        max_attempts=6,
        retry_mode="adaptive",
        user_agent_extra="ai-gateway-analytics",
    )
    return aws_client("athena", settings)


def athena_value(raw: str | None, athena_type: str) -> Any:
    """One result cell, typed by its Athena column type. A missing VarCharValue is NULL."""
    if raw is None:
        return None
    kind = athena_type.lower().split("(")[0].strip()
    if kind.startswith("timestamp"):  # "timestamp(3)", "timestamp with time zone"
        kind = "timestamp"
    convert = _CONVERTERS.get(kind)
    return convert(raw) if convert else raw


def _athena_timestamp(raw: str) -> datetime:
    # Athena prints "2026-11-29 05:12:03.123" (UTC for our data); keep it naive like DuckDB.
    return datetime.fromisoformat(raw.replace(" UTC", ""))


# How a result cell of each Athena type is read; other types stay strings.
_CONVERTERS: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(_INTEGER_TYPES, int),
    **dict.fromkeys(_FLOAT_TYPES, float),
    "decimal": Decimal,
    "boolean": lambda raw: raw.lower() == "true",
    "date": date.fromisoformat,
    "timestamp": _athena_timestamp,
}


class AthenaEngine:
    name = "athena"

    def __init__(
        self,
        *,
        workgroup: str,
        database: str,
        output_location: str,
        region: str,
        endpoint_url: str | None = None,
        time_limit_seconds: float = 600.0,
        page_size: int = 1000,
        first_poll_seconds: float = 0.25,
        max_poll_seconds: float = 5.0,
        client: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workgroup = workgroup
        self.database = database
        self.output_location = output_location
        self.region = region
        self.endpoint_url = endpoint_url
        self.time_limit_seconds = time_limit_seconds
        self.page_size = page_size
        self.first_poll_seconds = first_poll_seconds
        self.max_poll_seconds = max_poll_seconds
        self._client = client
        self._clock = clock
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = athena_client(self.region, self.endpoint_url)
        return self._client

    def run(self, sql: str, *, on_progress: ProgressCallback | None = None) -> QueryResult:
        query_id = self._start(sql)
        if on_progress:
            on_progress(10)
        self._wait(query_id, on_progress)
        if on_progress:
            on_progress(80)
        return self._results(query_id)

    def _start(self, sql: str) -> str:
        try:
            response = self.client.start_query_execution(
                QueryString=sql,
                WorkGroup=self.workgroup,
                QueryExecutionContext={"Database": self.database},
                ResultConfiguration={"OutputLocation": self.output_location},
            )
        except (ClientError, BotoCoreError) as error:
            raise ReportEngineError(f"Athena did not accept the query: {error}") from error
        return response["QueryExecutionId"]

    def _wait(self, query_id: str, on_progress: ProgressCallback | None) -> None:
        deadline = self._clock() + self.time_limit_seconds
        delay = self.first_poll_seconds
        while True:
            status = self._status(query_id)
            state = status.get("State", "")
            if state == "SUCCEEDED":
                return
            if state in _FINAL_STATES:
                reason = status.get("StateChangeReason") or "Athena gave no reason"
                verb = "failed" if state == "FAILED" else "was cancelled"
                raise ReportEngineError(f"Athena query {query_id} {verb}: {reason}", query_id=query_id)
            if on_progress and state == "RUNNING":
                on_progress(40)
            if self._clock() + delay > deadline:
                self._stop(query_id)
                raise ReportEngineError(
                    f"Athena query {query_id} ran longer than {self.time_limit_seconds:g} s and was stopped.",
                    query_id=query_id,
                )
            self._sleep(delay)
            delay = min(delay * 2, self.max_poll_seconds)

    def _status(self, query_id: str) -> dict[str, Any]:
        try:
            execution = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        except (ClientError, BotoCoreError) as error:
            raise ReportEngineError(
                f"Could not read the state of Athena query {query_id}: {error}", query_id=query_id
            ) from error
        return execution.get("Status", {})

    def _stop(self, query_id: str) -> None:
        # The time-limit error the caller raises is what the analyst needs to see, not this one.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.stop_query_execution(QueryExecutionId=query_id)

    def _results(self, query_id: str) -> QueryResult:
        columns: list[str] = []
        types: list[str] = []
        rows: list[list[Any]] = []
        token: str | None = None
        first_page = True
        while True:
            request: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": self.page_size}
            if token:
                request["NextToken"] = token
            try:
                page = self.client.get_query_results(**request)
            except (ClientError, BotoCoreError) as error:
                raise ReportEngineError(
                    f"Could not read the results of Athena query {query_id}: {error}", query_id=query_id
                ) from error
            result_set = page.get("ResultSet", {})
            page_rows = result_set.get("Rows", [])
            if first_page:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [column["Name"] for column in info]
                types = [column.get("Type", "varchar") for column in info]
                # A SELECT's first row repeats the column names; it is not data.
                if page_rows and [cell.get("VarCharValue") for cell in page_rows[0].get("Data", [])] == columns:
                    page_rows = page_rows[1:]
                first_page = False
            for row in page_rows:
                cells = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                rows.append([athena_value(value, kind) for value, kind in zip(cells, types, strict=False)])
            token = page.get("NextToken")
            if not token:
                break
        return QueryResult(columns=columns, rows=rows, query_id=query_id)
