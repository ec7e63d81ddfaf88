"""The Athena → DuckDB transpilation of the constructs the reports rely on."""
from __future__ import annotations

import duckdb

from analytics.engines.duckdb import athena_to_duckdb


def duck(sql: str) -> list[tuple]:
    relation = duckdb.sql(athena_to_duckdb(sql))
    assert relation is not None
    return relation.fetchall()


def test_approx_percentile_becomes_exact_nearest_rank():
    sql = "SELECT approx_percentile(x, 0.5), approx_percentile(x, 0.95) FROM (VALUES 10, 20, 30, 40) AS t(x)"
    assert "QUANTILE_DISC" in athena_to_duckdb(sql).upper()
    assert duck(sql) == [(20, 40)]


def test_ratios_cast_to_double_are_not_integer_division():
    assert duck("SELECT CAST(1 AS double) / CAST(3 AS double)")[0][0] == 1 / 3


def test_date_of_a_utc_timestamp_is_its_utc_day():
    # No time zone conversion happens on the way: the lake's ts is UTC wall time in both engines.
    assert str(duck("SELECT date(CAST('2026-11-29 23:59:59.999' AS timestamp))")[0][0]) == "2026-11-29"


def test_date_diff_in_days():
    assert duck("SELECT date_diff('day', DATE '2026-11-01', DATE '2026-11-29')")[0][0] == 28


def test_count_if_and_string_concatenation():
    assert duck("SELECT count_if(x > 1), 'quota ' || '10m' FROM (VALUES 1, 2, 3) AS t(x)") == [(2, "quota 10m")]


def test_at_time_zone_reads_the_timestamp_as_utc_as_athena_does():
    """Athena: `ts AT TIME ZONE z` is the UTC instant ts seen in z. DuckDB's own AT TIME ZONE on a
    plain TIMESTAMP means the opposite (ts is a wall-clock time in z), so the engine rewrites it."""
    sql = (
        "SELECT date(CAST('2026-11-29 15:00:00' AS timestamp) AT TIME ZONE 'Asia/Seoul'), "
        "date(CAST('2026-11-29 14:59:59' AS timestamp) AT TIME ZONE 'Asia/Seoul'), "
        "date(CAST('2026-11-30 04:59:59' AS timestamp) AT TIME ZONE 'America/New_York')"
    )
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")  # what the engine sets
    got = [str(day) for day in connection.execute(athena_to_duckdb(sql)).fetchone()]
    assert got == ["2026-11-30", "2026-11-29", "2026-11-29"]


def test_the_bound_athena_sql_round_trips_to_the_same_meaning():
    """What a run stores is Athena SQL; sqlglot prints AT TIME ZONE as Trino's `at_timezone`, which
    the engine must read with the same meaning."""
    import sqlglot

    stored = sqlglot.transpile("SELECT ts AT TIME ZONE 'Asia/Seoul' FROM requests", read="athena", write="athena")[0]
    assert "timezone('Asia/Seoul', CAST(ts AS TIMESTAMPTZ))" in athena_to_duckdb(stored).replace(
        "TIMEZONE(", "timezone("
    )
