"""The built-in reports, written once in Athena's SQL dialect (Trino/Presto).

Each query reads the table `requests` (the Glue table over the lake in AWS; a DuckDB view over
the local lake otherwise) and uses the same named placeholders, which
`analytics.params.report_sql_bind` replaces by SQL literals built with sqlglot:

- `:start_date`, `:end_date` — 'YYYY-MM-DD' strings, both days included (UTC);
- `:model_id` — a model id or NULL for every model;
- `:all_users` — TRUE unless a group was chosen; `:group_subs` — the group's user subs.

The `year || '-' || month || '-' || day` condition lets Athena prune partitions (the hive
partition keys are strings) so a report scans only the days it reports on. Ratios cast to
DOUBLE first: Athena divides integers as integers, DuckDB does not.

The seed migration copies these into `ReportDefinition` rows (admins may edit them after).
"""
from __future__ import annotations

from typing import Any

# Shared WHERE clause: the parameters every report accepts.
REPORT_FILTERS = """
    year || '-' || month || '-' || day BETWEEN :start_date AND :end_date
    AND date(ts) BETWEEN CAST(:start_date AS date) AND CAST(:end_date AS date)
    AND (:model_id IS NULL OR model_id = :model_id)
    AND (:all_users OR user_sub IN (:group_subs))
"""

DEFAULT_PARAMS: dict[str, Any] = {"days": 7}

REPORTS: tuple[dict[str, Any], ...] = (
    {
        "slug": "tokens-cost-by-model",
        "title": "Tokens and cost by model per day",
        "description": "Requests, input/output/total tokens and cost in USD for each model, day by day (UTC).",
        "chart_kind": "line",
        "x_column": "day",
        "y_column": "total_tokens",
        "series_column": "model_id",
        "sql": f"""
SELECT date(ts) AS day,
       model_id,
       count(*) AS requests,
       sum(coalesce(input_tokens, 0)) AS input_tokens,
       sum(coalesce(output_tokens, 0)) AS output_tokens,
       sum(coalesce(total_tokens, 0)) AS total_tokens,
       round(sum(coalesce(cost_usd, 0.0)), 6) AS cost_usd
FROM requests
WHERE {REPORT_FILTERS}
GROUP BY date(ts), model_id
ORDER BY day, model_id
""",
    },
    {
        "slug": "top-users-by-tokens",
        "title": "Top users by tokens",
        "description": "The 25 users who used the most model tokens in the period.",
        "chart_kind": "bar",
        "x_column": "user_sub",
        "y_column": "total_tokens",
        "series_column": "",
        "sql": f"""
SELECT user_sub,
       count(*) AS requests,
       sum(coalesce(total_tokens, 0)) AS total_tokens,
       round(sum(coalesce(cost_usd, 0.0)), 6) AS cost_usd
FROM requests
WHERE {REPORT_FILTERS}
GROUP BY user_sub
ORDER BY total_tokens DESC, user_sub
LIMIT 25
""",
    },
    {
        "slug": "conversations-per-user",
        "title": "Conversations and requests per user",
        "description": "Distinct conversations and chat turns of each user.",
        "chart_kind": "bar",
        "x_column": "user_sub",
        "y_column": "requests",
        "series_column": "",
        "sql": f"""
SELECT user_sub,
       count(DISTINCT conversation_id) AS conversations,
       count(*) AS requests
FROM requests
WHERE {REPORT_FILTERS}
GROUP BY user_sub
ORDER BY requests DESC, user_sub
""",
    },
    {
        "slug": "latency-by-model",
        "title": "Latency by model (p50 / p95)",
        "description": "Time to first token and total latency of answered turns, in milliseconds.",
        "chart_kind": "bar",
        "x_column": "model_id",
        "y_column": "latency_p95_ms",
        "series_column": "",
        "sql": f"""
SELECT model_id,
       count(*) AS requests,
       approx_percentile(ttft_ms, 0.5) AS ttft_p50_ms,
       approx_percentile(ttft_ms, 0.95) AS ttft_p95_ms,
       approx_percentile(latency_ms, 0.5) AS latency_p50_ms,
       approx_percentile(latency_ms, 0.95) AS latency_p95_ms
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'ok'
GROUP BY model_id
ORDER BY model_id
""",
    },
    {
        "slug": "cache-hit-rate",
        "title": "Cache hit rate and tokens saved",
        "description": "Share of answered turns served from the cache or a prepared response, and the model tokens it saved.",
        "chart_kind": "line",
        "x_column": "day",
        "y_column": "hit_rate",
        "series_column": "",
        "sql": f"""
SELECT date(ts) AS day,
       count(*) AS answered,
       count_if(cache IN ('hit', 'prepared')) AS cache_hits,
       round(CAST(count_if(cache IN ('hit', 'prepared')) AS double) / CAST(count(*) AS double), 4) AS hit_rate,
       sum(coalesce(saved_tokens, 0)) AS saved_tokens
FROM requests
WHERE {REPORT_FILTERS}
  AND outcome = 'ok'
GROUP BY date(ts)
ORDER BY day
""",
    },
    {
        "slug": "refusals-by-reason",
        "title": "Refusals by reason",
        "description": "Turns refused before the model was called: a quota window (10m or month) or another rule.",
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
        "title": "Errors by type",
        "description": "Turns that ended in an error, by the error type clients saw.",
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
