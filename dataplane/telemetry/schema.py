"""The one definition of a request record, as stored in the log lake.

The Glue table in `deploy/`, the local DuckDB view in `analytics/` and the report tests all
read this list, so a column is added here once and appears everywhere. Types are Athena
(Hive DDL) types; `duckdb_type()` maps them for the local engine.

The lake is gzip JSON lines under `year=YYYY/month=MM/day=DD/hour=HH/`, one record per chat
turn (a refused turn too), in UTC.

`ts` is written as `2026-11-29 05:12:03.123` (UTC, milliseconds, no zone suffix): the format
`java.sql.Timestamp` reads, so both of Athena's JSON SerDes parse it into a `timestamp` without
SerDe properties, and DuckDB reads it as a TIMESTAMP.
"""
from __future__ import annotations

from datetime import datetime, timezone

LAKE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (name, Athena type, meaning)
    ("request_id", "string", "unique id of the chat turn"),
    ("ts", "timestamp", "when the turn started, UTC"),
    ("user_sub", "string", "stable id of the user (Cognito sub or local UUID)"),
    ("conversation_id", "string", "client's conversation id"),
    ("model_id", "string", "model id, inference profile id or ARN"),
    ("provider", "string", "bedrock | openai | demo | cache | prepared"),
    ("entry", "string", "which door: appsync | channels | http"),
    ("input_tokens", "bigint", "input tokens billed"),
    ("output_tokens", "bigint", "output tokens billed"),
    ("total_tokens", "bigint", "input + output"),
    ("saved_tokens", "bigint", "model tokens a cache or prepared hit saved"),
    ("estimated_usage", "boolean", "true when usage was estimated (no usage from the model)"),
    ("ttft_ms", "bigint", "time to first token, ms (null when no token)"),
    ("latency_ms", "bigint", "total latency of the turn, ms"),
    ("cache", "string", "hit | miss | prepared | bypass | skipped"),
    ("privacy_reason", "string", "why the cache was bypassed or not written: policy | client | pii | answer_pii | guardrail | null"),
    ("outcome", "string", "ok | refused | error | cancelled"),
    ("error_type", "string", "one of dataplane.errors.ERROR_TYPES, or null"),
    ("refusal_window", "string", "10m | month when refused for quota, else null"),
    ("stop_reason", "string", "the model's stop reason"),
    ("cost_usd", "double", "input and output tokens at the catalogue's prices"),
    ("prompt_preview", "string", "redacted, truncated prompt; only when the policy allows and no personal data was found"),
    ("guardrail_action", "string", "what the Bedrock guardrail did: intervened | masked | none | null (no guardrail)"),
)

PARTITION_KEYS: tuple[tuple[str, str], ...] = (
    ("year", "string"),
    ("month", "string"),
    ("day", "string"),
    ("hour", "string"),
)

# Firehose writes `<prefix>year=!{timestamp:yyyy}/month=!{timestamp:MM}/...`; the local lake and
# Glue's partition projection use the same layout.
PARTITION_PATH_TEMPLATE = "year={year:04d}/month={month:02d}/day={day:02d}/hour={hour:02d}/"

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
}


def column_names() -> list[str]:
    return [name for name, _, _ in LAKE_COLUMNS]


def duckdb_type(athena_type: str) -> str:
    return _DUCKDB_TYPES[athena_type]


def format_lake_timestamp(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_lake_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
