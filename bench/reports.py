"""How long each built-in report takes on the local DuckDB engine over a large Parquet lake.

Generates N synthetic chat turns over D days, writes them through the product's own lake sink
(`LakeSink`: batches of rows, one Parquet file per batch and partition), compacts the lake as
the first local report does, publishes a `users`/`group_members` table, then times every
report over the whole period (median of a few runs), in UTC, in Asia/Seoul and for a group.
Not a test: it asserts nothing. Target: every report under 1 s at 1M records.

    .venv/bin/python bench/reports.py [--records 1000000] [--days 30] [--runs 3] [--users 500]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.catalogue import REPORTS
from analytics.engines.duckdb import DuckDBEngine
from analytics.lake import synthetic_records
from analytics.params import BoundFilters, ReportParams, report_sql_bind
from dataplane.telemetry.parquet import lake_compact, requests_root
from dataplane.telemetry.record import RequestRecord
from dataplane.telemetry.schema import DIRECTORY_TABLES, directory_object_key, parse_lake_timestamp
from dataplane.telemetry.sinks import LakeSink

FIRST_DAY = date(2026, 11, 1)
GROUP = "Pilots"


def as_record(row: dict) -> RequestRecord:
    fields = {name: value for name, value in row.items() if name != "total_tokens"}
    return RequestRecord(**{**fields, "ts": parse_lake_timestamp(row["ts"])})


def lake_write(lake: Path, *, records: int, days: int, users: int) -> float:
    subs = [f"bench-user-{n:05d}" for n in range(users)]
    rows = synthetic_records(
        first_day=FIRST_DAY, days=days, user_subs=subs, turns_per_day=max(1, records // days), seed=13
    )
    sink = LakeSink(lake)  # the product's defaults: 1000 rows or 60 s per batch
    began = time.perf_counter()
    for row in rows:
        sink.emit(as_record(row))
    sink.flush()
    directory_write(lake, subs)
    return time.perf_counter() - began


def directory_write(lake: Path, subs: list[str]) -> None:
    """What `analytics.directory` publishes: every user, a tenth of them in one group."""
    tables = {
        "users": [(sub, f"user{n}") for n, sub in enumerate(subs)],
        "group_members": [(sub, GROUP) for sub in subs[::10]],
    }
    for table, rows in tables.items():
        path = lake / directory_object_key(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
            writer.writerow(DIRECTORY_TABLES[table])
            writer.writerows(rows)


def timed(engine: DuckDBEngine, sql: str, runs: int) -> tuple[float, int]:
    durations, rows = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        rows = len(engine.run(sql).rows)
        durations.append(time.perf_counter() - began)
    return statistics.median(durations), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="runs per report; the median is printed")
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args()
    if min(args.records, args.days, args.runs, args.users) < 1:
        parser.error("--records, --days, --runs and --users must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-lake-") as scratch:
        lake = Path(scratch)
        write_seconds = lake_write(lake, records=args.records, days=args.days, users=args.users)
        files = len(list(requests_root(lake).rglob("*.parquet")))
        began = time.perf_counter()
        lake_compact(lake)
        compact_seconds = time.perf_counter() - began
        size_mb = sum(p.stat().st_size for p in requests_root(lake).rglob("*.parquet")) / 1e6
        print(f"lake: {args.records:,} records over {args.days} days, {args.users} users")
        print(f"  written by LakeSink in {write_seconds:.1f} s as {files} files; compacted in {compact_seconds:.1f} s "
              f"to {len(list(requests_root(lake).rglob('*.parquet')))} files, {size_mb:.1f} MB")

        engine = DuckDBEngine(lake_dir=lake)
        last_day = FIRST_DAY + timedelta(days=args.days - 1)
        scenarios = {
            "UTC": ReportParams(FIRST_DAY, last_day),
            "Asia/Seoul": ReportParams(FIRST_DAY, last_day, time_zone="Asia/Seoul"),
            "group, UTC": ReportParams(FIRST_DAY, last_day, group=GROUP),
        }
        print(f"\nmedian of {args.runs} runs, seconds (rows)   " + "".join(f"{name:>18}" for name in scenarios))
        slowest = 0.0
        for report in REPORTS:
            cells = []
            for params in scenarios.values():
                seconds, rows = timed(engine, report_sql_bind(report["sql"], BoundFilters(params=params)), args.runs)
                slowest = max(slowest, seconds)
                cells.append(f"{seconds:>10.3f} ({rows:>4})")
            print(f"  {report['slug']:<38}" + "".join(f"{cell:>18}" for cell in cells))
        print(f"\nslowest report: {slowest:.3f} s (target < 1 s) at {datetime.now().astimezone():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
