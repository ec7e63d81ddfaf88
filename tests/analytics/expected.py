"""The reports' figures computed in plain Python from the same records the lake holds.

Independent of SQL on purpose: a report is right when DuckDB over the files agrees with this.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dataplane.telemetry.schema import parse_lake_timestamp

# The zone the figures below count days in; `in_scope` sets it along with the period.
_zone = {"name": "UTC"}
# sub → username, as Django publishes it; subs without a user show as themselves.
USERNAMES: dict[str, str] = {}
# sub → the groups Django publishes it in.
GROUPS: dict[str, set[str]] = {}


def record_day(record: dict[str, Any], time_zone: str | None = None) -> date:
    return parse_lake_timestamp(record["ts"]).astimezone(ZoneInfo(time_zone or _zone["name"])).date()


def in_scope(records: Iterable[dict], *, start: date, end: date, model_id: str | None = None,
             subs: Sequence[str] | None = None, time_zone: str = "UTC") -> list[dict]:
    _zone["name"] = time_zone
    return [
        r for r in records
        if start <= record_day(r) <= end
        and (model_id is None or r["model_id"] == model_id)
        and (subs is None or r["user_sub"] in subs)
    ]


def username(sub: str) -> str:
    return USERNAMES.get(sub, sub)


def nearest_rank(values: list[int], q: float) -> int | None:
    """Percentile by nearest rank: the smallest value with at least q of the data at or below it."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[max(0, math.ceil(len(values) * q) - 1)]


def tokens_cost_by_model(records: list[dict]) -> list[list]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(record_day(r).isoformat(), r["model_id"])].append(r)
    return [
        [day, model, len(rs), sum(r["input_tokens"] or 0 for r in rs), sum(r["output_tokens"] or 0 for r in rs),
         sum(r["total_tokens"] or 0 for r in rs), sum(r["cost_usd"] or 0.0 for r in rs)]
        for (day, model), rs in sorted(groups.items())
    ]


def top_users_by_tokens(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["user_sub"]].append(r)
    rows: list[list[Any]] = [
        [username(sub), sub, len(rs), sum(r["total_tokens"] or 0 for r in rs), sum(r["cost_usd"] or 0.0 for r in rs)]
        for sub, rs in groups.items()
    ]
    return sorted(rows, key=lambda row: (-row[3], row[1]))[:25]


def conversations_per_user(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["user_sub"]].append(r)
    rows = [[username(sub), sub, len({r["conversation_id"] for r in rs}), len(rs)] for sub, rs in groups.items()]
    return sorted(rows, key=lambda row: (-row[3], row[1]))


def cost_by_group(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        for group in GROUPS.get(r["user_sub"]) or {"(no group)"}:
            groups[group].append(r)
    rows = [[group, len({r["user_sub"] for r in rs}), len(rs), sum(r["total_tokens"] or 0 for r in rs),
             sum(r["cost_usd"] or 0.0 for r in rs)] for group, rs in groups.items()]
    # The SQL orders by the rounded cost; the test data has no two groups within rounding.
    return sorted(rows, key=lambda row: (-round(row[4], 6), row[0]))


def latency_by_model(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["outcome"] == "ok":
            groups[r["model_id"]].append(r)
    return [
        [model, len(rs),
         *(nearest_rank([r["ttft_ms"] for r in rs], q) for q in (0.5, 0.95, 0.99)),
         *(nearest_rank([r["latency_ms"] for r in rs], q) for q in (0.5, 0.95, 0.99))]
        for model, rs in sorted(groups.items())
    ]


def cache_hit_rate(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["outcome"] == "ok":
            groups[record_day(r).isoformat()].append(r)
    rows = []
    for day, rs in sorted(groups.items()):
        cache_hits = sum(1 for r in rs if r["cache"] == "hit")
        prepared = sum(1 for r in rs if r["cache"] == "prepared")
        rows.append([day, len(rs), cache_hits, prepared, (cache_hits + prepared) / len(rs),
                     sum(r["saved_tokens"] or 0 for r in rs)])
    return rows


def error_refusal_rates(records: list[dict]) -> list[list]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[record_day(r).isoformat()].append(r)
    rows = []
    for day, rs in sorted(groups.items()):
        errors = sum(1 for r in rs if r["outcome"] == "error")
        refusals = sum(1 for r in rs if r["outcome"] == "refused")
        rows.append([day, len(rs), errors, refusals, errors / len(rs), refusals / len(rs)])
    return rows


def active_users(records: list[dict]) -> list[list]:
    def week(day: date) -> date:
        return day - timedelta(days=day.weekday())

    periods = {"daily": lambda d: d, "weekly": week, "monthly": lambda d: d.replace(day=1)}
    rows = []
    for granularity, start_of in sorted(periods.items()):
        users: dict[date, set[str]] = defaultdict(set)
        for r in records:
            users[start_of(record_day(r))].add(r["user_sub"])
        rows += [[granularity, start.isoformat(), len(subs)] for start, subs in sorted(users.items())]
    return rows


def refusals_by_reason(records: list[dict]) -> list[list]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        if r["outcome"] == "refused":
            reason = f"quota {r['refusal_window']}" if r["refusal_window"] else (r["error_type"] or "unknown")
            counts[reason] += 1
    return sorted(([reason, n] for reason, n in counts.items()), key=lambda row: (-row[1], row[0]))


def errors_by_type(records: list[dict]) -> list[list]:
    counts: dict[str, int] = defaultdict(int)
    for r in records:
        if r["outcome"] == "error":
            counts[r["error_type"] or "unknown"] += 1
    return sorted(([kind, n] for kind, n in counts.items()), key=lambda row: (-row[1], row[0]))


EXPECTED_BY_SLUG = {
    "tokens-cost-by-model": tokens_cost_by_model,
    "top-users-by-tokens": top_users_by_tokens,
    "conversations-per-user": conversations_per_user,
    "cost-by-group": cost_by_group,
    "latency-by-model": latency_by_model,
    "cache-hit-rate": cache_hit_rate,
    "error-refusal-rates": error_refusal_rates,
    "active-users": active_users,
    "refusals-by-reason": refusals_by_reason,
    "errors-by-type": errors_by_type,
}
# Columns the SQL rounds (cost to 6 places, the rate to 4): compared to that precision.
ROUNDED_COLUMNS = {"cost_usd": 1e-6, "hit_rate": 1e-4, "error_rate": 1e-4, "refusal_rate": 1e-4}
