"""The one definition of a request record, as stored in the log lake.

The Glue table in `deploy/`, the local DuckDB view in `analytics/` and the report tests all
read this list, so a column is added here once and appears everywhere. Types are Athena
(Hive DDL) types; `duckdb_type()` maps them for the local engine.

The lake is Parquet under `dt=YYYY-MM-DD/`, one row per chat turn (a refused turn too). `dt` is
the UTC day of the record's own `ts` (its event time, not when it reached the lake), so a day's
partition holds exactly that day's turns: Firehose derives it from `ts` with dynamic
partitioning, the local sink from the same field. Reports filter `dt` and `ts` together; the
`dt` filter only prunes.

`ts` is written as `2026-11-29 05:12:03.123` (UTC, milliseconds, no zone suffix): the format
`java.sql.Timestamp` reads, so both of Athena's JSON SerDes parse it into a `timestamp` without
SerDe properties, and DuckDB reads it as a TIMESTAMP.
"""
from __future__ import annotations

from datetime import UTC, datetime

LAKE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (name, Athena type, meaning)
    ("request_id", "string", "unique id of the chat turn"),
    ("ts", "timestamp", "when the turn started, UTC"),
    ("user_sub", "string", "stable id of the user (Cognito sub or local UUID)"),
    ("conversation_id", "string", "client's conversation id"),
    ("model_id", "string", "model id, inference profile id or ARN"),
    ("provider", "string", "bedrock | openai | demo | cache | prepared"),
    ("entry", "string", "which door: appsync | channels | http | openai"),
    ("input_tokens", "bigint", "input tokens billed"),
    ("output_tokens", "bigint", "output tokens billed"),
    ("total_tokens", "bigint", "input + output"),
    ("saved_tokens", "bigint", "model tokens a cache or prepared hit saved"),
    ("estimated_usage", "boolean", "true when usage was estimated (no usage from the model)"),
    ("ttft_ms", "bigint", "time to first token, ms (null when no token)"),
    ("latency_ms", "bigint", "total latency of the turn, ms"),
    ("cache", "string", "hit | miss | prepared | bypass | skipped"),
    (
        "privacy_reason",
        "string",
        "why the cache was bypassed or not written: policy | client | pii | answer_pii | guardrail | null",
    ),
    ("outcome", "string", "ok | refused | error | cancelled"),
    ("error_type", "string", "one of dataplane.errors.ERROR_TYPES, or null"),
    ("refusal_window", "string", "10m | month | group_month (a group's pool) when refused for quota, else null"),
    ("stop_reason", "string", "the model's stop reason"),
    ("cost_usd", "double", "input and output tokens at the catalogue's prices"),
    (
        "prompt_preview",
        "string",
        "redacted, truncated prompt; only when the policy allows and no personal data was found",
    ),
    ("guardrail_action", "string", "what the Bedrock guardrail did: intervened | masked | none | null (no guardrail)"),
)

# One date-typed projection (`dt`) instead of year/month/day/hour: Athena prunes it from a plain
# `dt BETWEEN '2026-11-01' AND '2026-11-30'`, where per-column keys need per-column predicates.
PARTITION_KEYS: tuple[tuple[str, str], ...] = (("dt", "string"),)
PARTITION_DATE_FORMAT = "%Y-%m-%d"
# The first characters of a lake timestamp are its partition value (see `format_lake_timestamp`).
PARTITION_VALUE_LENGTH = len("2026-11-29")

# Firehose writes `<prefix>dt=!{partitionKeyFromQuery:dt}/`; the local lake and Glue's partition
# projection use the same layout.
PARTITION_PATH_TEMPLATE = "dt={dt}/"

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "bigint": "BIGINT",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
}


def partition_value(moment: datetime) -> str:
    """The `dt` partition of a record: its UTC day, as `format_lake_timestamp` starts."""
    return moment.astimezone(UTC).strftime(PARTITION_DATE_FORMAT)


def column_names() -> list[str]:
    return [name for name, _, _ in LAKE_COLUMNS]


def duckdb_type(athena_type: str) -> str:
    return _DUCKDB_TYPES[athena_type]


def format_lake_timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_lake_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# Small tables Django publishes next to the request log so report SQL can join them: who a sub
# is, and who is in which group (a join, where an inline id list would outgrow Athena's 256 KiB
# query limit). One CSV per table with a header row, `<lake>/<table>/<table>.csv` locally and
# under the same folder of the lake prefix on S3; every column a string.
DIRECTORY_TABLES: dict[str, tuple[str, ...]] = {
    "users": ("user_sub", "username"),
    "group_members": ("user_sub", "group_name"),
}


def directory_object_key(table: str) -> str:
    """The path of a directory table's one file, relative to the lake root."""
    return f"{table}/{table}.csv"
