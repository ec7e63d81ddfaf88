"""The Athena → DuckDB transpilation of the constructs the reports rely on."""
from __future__ import annotations

import duckdb

from analytics.engines.duckdb import athena_to_duckdb


def duck(sql: str) -> list[tuple]:
    return duckdb.sql(athena_to_duckdb(sql)).fetchall()


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
