"""The built-in reports, written once in Athena's SQL dialect (Trino/Presto).

Each query reads the table `requests` (the Glue table over the Parquet lake in AWS; a DuckDB view
over the local Parquet lake otherwise), and may join the two small tables Django publishes
(`analytics.directory`): `users` (user_sub, username) and `group_members` (user_sub,
group_name). The named placeholders are replaced by SQL literals (`analytics.params`):

- `:first_dt`, `:last_dt` — the UTC `dt` partitions the period touches (pruning only);
- `:start_ts`, `:end_ts` — the period as UTC instants, start included, end excluded;
- `:time_zone` — the report's IANA time zone: days are local calendar days;
- `:start_date`, `:end_date` — the period's first and last local day, for display;
- `:model_id` — a model id or NULL for every model;
- `:all_users` — TRUE unless a group was chosen; `:group_name` — that group.

`dt` is a string partition with a date-typed projection, so Athena prunes on the plain
`BETWEEN`; `ts` then cuts the period exactly. Ratios cast to DOUBLE first: Athena divides
integers as integers, DuckDB does not. `ts AT TIME ZONE` reads `ts` as UTC, Athena's session
zone; the DuckDB engine rewrites it to the same meaning.

The seed migrations copy these into `ReportDefinition` rows (admins may edit them after).
"""
from __future__ import annotations

from typing import Any

# Marked for the catalogue only: rows keep the English text (admins may edit it); the pages
# translate a title or description that is still the built-in one.
from django.utils.translation import gettext_noop

# Shared WHERE clause: the parameters every report accepts.
REPORT_FILTERS = """
    dt BETWEEN :first_dt AND :last_dt
    AND ts >= CAST(:start_ts AS timestamp) AND ts < CAST(:end_ts AS timestamp)
    AND (:model_id IS NULL OR model_id = :model_id)
    AND (:all_users OR user_sub IN (SELECT user_sub FROM group_members WHERE group_name = :group_name))
"""
# The turn's calendar day in the report's time zone.
LOCAL_DAY = "date(ts AT TIME ZONE :time_zone)"
# The requests of the period and scope, under one name the report's body can join.
SCOPED = f"WITH scoped AS (SELECT * FROM requests WHERE {REPORT_FILTERS})"

# The last 7 days including today, in GATEWAY_MONTH_TIMEZONE (a schedule uses its calendar period).
DEFAULT_PARAMS: dict[str, Any] = {"days": 7}

REPORTS: tuple[dict[str, Any], ...] = (
    {
        "slug": "tokens-cost-by-model",
        "title": gettext_noop("Tokens and cost by model per day"),
        "description": gettext_noop(
            "Requests, input/output/total tokens and cost in USD for each model, day by day."
        ),
        "chart_kind": "line",
        "x_column": "day",
        "y_column": "total_tokens",
        "series_column": "model_id",
        "sql": f"""
SELECT {LOCAL_DAY} AS day,
       model_id,
       count(*) AS requests,
       sum(coalesce(input_tokens, 0)) AS input_tokens,
       sum(coalesce(output_tokens, 0)) AS output_tokens,
       sum(coalesce(total_tokens, 0)) AS total_tokens,
       round(sum(coalesce(cost_usd, 0.0)), 6) AS cost_usd
FROM requests
WHERE {REPORT_FILTERS}
GROUP BY 1, 2
ORDER BY day, model_id
""",
    },
    {
        "slug": "top-users-by-tokens",
        "title": gettext_noop("Top users by tokens"),
        "description": gettext_noop("The 25 users who used the most model tokens in the period."),
        "chart_kind": "bar",
        "x_column": "username",
        "y_column": "total_tokens",
        "series_column": "",
        "sql": f"""
{SCOPED}
SELECT coalesce(max(u.username), s.user_sub) AS username,
       s.user_sub,
       count(*) AS requests,
       sum(coalesce(s.total_tokens, 0)) AS total_tokens,
       round(sum(coalesce(s.cost_usd, 0.0)), 6) AS cost_usd
FROM scoped s
LEFT JOIN users u ON u.user_sub = s.user_sub
GROUP BY s.user_sub
ORDER BY total_tokens DESC, s.user_sub
LIMIT 25
""",
    },
    {
        "slug": "conversations-per-user",
        "title": gettext_noop("Conversations and requests per user"),
        "description": gettext_noop("Distinct conversations and chat turns of each user."),
        "chart_kind": "bar",
        "x_column": "username",
        "y_column": "requests",
        "series_column": "",
        "sql": f"""
{SCOPED}
SELECT coalesce(max(u.username), s.user_sub) AS username,
       s.user_sub,
       count(DISTINCT s.conversation_id) AS conversations,
       count(*) AS requests
FROM scoped s
LEFT JOIN users u ON u.user_sub = s.user_sub
GROUP BY s.user_sub
ORDER BY requests DESC, s.user_sub
""",
    },
    {
        "slug": "cost-by-group",
        "title": gettext_noop("Cost by group"),
        "description": gettext_noop(
            "Users, requests, tokens and cost of each group's members (a member of two groups counts in both)."
        ),
        "chart_kind": "bar",
        "x_column": "group_name",
        "y_column": "cost_usd",
        "series_column": "",
        "sql": f"""
{SCOPED}
SELECT coalesce(m.group_name, '(no group)') AS group_name,
       count(DISTINCT s.user_sub) AS users,
       count(*) AS requests,
       sum(coalesce(s.total_tokens, 0)) AS total_tokens,
       round(sum(coalesce(s.cost_usd, 0.0)), 6) AS cost_usd
FROM scoped s
LEFT JOIN group_members m ON m.user_sub = s.user_sub
GROUP BY 1
ORDER BY cost_usd DESC, group_name
""",
    },
    {
        "slug": "latency-by-model",
        "title": gettext_noop("Latency by model (p50 / p95 / p99)"),
        "description": gettext_noop(
            "Time to first token and total latency of answered turns, in milliseconds."
        ),
        "chart_kind": "bar",
        "x_column": "model_id",
        "y_column": "latency_p95_ms",
        "series_column": "",
        "sql": f"""
SELECT model_id,
       count(*) AS requests,
       approx_percentile(ttft_ms, 0.5) AS ttft_p50_ms,
       approx_percentile(ttft_ms, 0.95) AS ttft_p95_ms,
       approx_percentile(ttft_ms, 0.99) AS ttft_p99_ms,
       approx_percentile(latency_ms, 0.5) AS latency_p50_ms,
       approx_percentile(latency_ms, 0.95) AS latency_p95_ms,
       approx_percentile(latency_ms, 0.99) AS latency_p99_ms
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'ok'
GROUP BY model_id
ORDER BY model_id
""",
    },
    {
        "slug": "cache-hit-rate",
        "title": gettext_noop("Cache and prepared-answer savings"),
        "description": gettext_noop(
            "Share of answered turns served from the cache or a prepared answer, and the model tokens they saved."
        ),
        "chart_kind": "line",
        "x_column": "day",
        "y_column": "hit_rate",
        "series_column": "",
        "sql": f"""
SELECT {LOCAL_DAY} AS day,
       count(*) AS answered,
       count_if(cache = 'hit') AS cache_hits,
       count_if(cache = 'prepared') AS prepared_hits,
       round(CAST(count_if(cache IN ('hit', 'prepared')) AS double) / CAST(count(*) AS double), 4) AS hit_rate,
       sum(coalesce(saved_tokens, 0)) AS saved_tokens
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'ok'
GROUP BY 1
ORDER BY day
""",
    },
    {
        "slug": "error-refusal-rates",
        "title": gettext_noop("Error and refusal rates per day"),
        "description": gettext_noop(
            "Share of chat turns that ended in an error or were refused, day by day."
        ),
        "chart_kind": "line",
        "x_column": "day",
        "y_column": "error_rate",
        "series_column": "",
        "sql": f"""
SELECT {LOCAL_DAY} AS day,
       count(*) AS requests,
       count_if(outcome = 'error') AS errors,
       count_if(outcome = 'refused') AS refusals,
       round(CAST(count_if(outcome = 'error') AS double) / CAST(count(*) AS double), 4) AS error_rate,
       round(CAST(count_if(outcome = 'refused') AS double) / CAST(count(*) AS double), 4) AS refusal_rate
FROM requests
WHERE {REPORT_FILTERS}
GROUP BY 1
ORDER BY day
""",
    },
    {
        "slug": "active-users",
        "title": gettext_noop("Daily, weekly and monthly active users"),
        "description": gettext_noop(
            "Distinct users with at least one chat turn per day, ISO week and month "
            "(weeks and months cut to the period)."
        ),
        "chart_kind": "line",
        "x_column": "period_start",
        "y_column": "active_users",
        "series_column": "granularity",
        "sql": f"""
WITH active AS (
  SELECT DISTINCT user_sub, {LOCAL_DAY} AS day
  FROM requests
  WHERE {REPORT_FILTERS}
)
SELECT 'daily' AS granularity, day AS period_start, count(DISTINCT user_sub) AS active_users
FROM active GROUP BY 2
UNION ALL
SELECT 'weekly' AS granularity, CAST(date_trunc('week', day) AS date) AS period_start,
  count(DISTINCT user_sub) AS active_users
FROM active GROUP BY 2
UNION ALL
SELECT 'monthly' AS granularity, CAST(date_trunc('month', day) AS date) AS period_start,
  count(DISTINCT user_sub) AS active_users
FROM active GROUP BY 2
ORDER BY granularity, period_start
""",
    },
    {
        "slug": "refusals-by-reason",
        "title": gettext_noop("Refusals by reason"),
        "description": gettext_noop(
            "Turns refused before the model was called: a quota window (10m or month) or another rule."
        ),
        "chart_kind": "bar",
        "x_column": "reason",
        "y_column": "refusals",
        "series_column": "",
        "sql": f"""
SELECT CASE
         WHEN refusal_window IS NOT NULL THEN 'quota ' || refusal_window
         ELSE coalesce(error_type, 'unknown')
       END AS reason,
       count(*) AS refusals
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'refused'
GROUP BY 1
ORDER BY refusals DESC, reason
""",
    },
    {
        "slug": "errors-by-type",
        "title": gettext_noop("Errors by type"),
        "description": gettext_noop("Turns that ended in an error, by the error type clients saw."),
        "chart_kind": "bar",
        "x_column": "error_type",
        "y_column": "errors",
        "series_column": "",
        "sql": f"""
SELECT coalesce(error_type, 'unknown') AS error_type,
       count(*) AS errors
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'error'
GROUP BY 1
ORDER BY errors DESC, error_type
""",
    },
)
