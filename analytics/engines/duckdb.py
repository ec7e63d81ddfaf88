"""The embedded report engine: DuckDB over the local Parquet lake.

The report SQL is Athena's dialect; sqlglot transpiles it (read="athena", write="duckdb"). Two
deliberate changes on the way:

- Athena's `approx_percentile` becomes DuckDB's exact `quantile_disc` (nearest rank) instead of
  `approx_quantile`, whose t-digest estimate is not a value of the data set and is not
  repeatable on small samples. Athena's approximation returns a value close to the same rank,
  so local figures are the exact ones Athena approximates.
- `ts AT TIME ZONE 'Asia/Seoul'` means "the UTC timestamp ts, seen in Seoul" in Athena (its
  session zone is UTC), but "ts is a Seoul wall-clock time" in DuckDB; it becomes
  `timezone('Asia/Seoul', ts::TIMESTAMPTZ)` on a connection whose zone is UTC, Athena's meaning.

Before reading, this process's buffered lake rows are flushed and small files compacted, so a
report sees every turn written so far (by this process; others flush within a minute).
"""
from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from analytics.engines.base import ProgressCallback, QueryResult, ReportEngineError
from dataplane.telemetry.parquet import LakeFileError, lake_compact, lake_lock, requests_root
from dataplane.telemetry.schema import (
    DIRECTORY_TABLES,
    LAKE_COLUMNS,
    PARTITION_KEYS,
    directory_object_key,
    duckdb_type,
)
from dataplane.telemetry.sinks import lake_sinks_flush

LAKE_TABLE = "requests"
_AT_TIMEZONE_ARGS = 2  # at_timezone(x, z)


def athena_to_duckdb(sql: str) -> str:
    """Transpile one Athena query into DuckDB's dialect."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise ReportEngineError(f"The report's SQL does not parse as Athena SQL: {error}") from error

    def athena_meaning(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.ApproxQuantile):
            return exp.Anonymous(this="quantile_disc", expressions=[node.this.copy(), node.args["quantile"].copy()])
        if isinstance(node, exp.AtTimeZone):
            return _seen_in_zone(node.this, node.args["zone"])
        # sqlglot writes `x AT TIME ZONE z` as Trino's `at_timezone(x, z)`, and reads that back as is.
        if (
            isinstance(node, exp.Anonymous)
            and node.name.lower() == "at_timezone"
            and len(node.expressions) == _AT_TIMEZONE_ARGS
        ):
            return _seen_in_zone(*node.expressions)
        return node

    return tree.transform(athena_meaning).sql(dialect="duckdb")


def _seen_in_zone(timestamp: exp.Expression, zone: exp.Expression) -> exp.Expression:
    if isinstance(zone, exp.Literal) and zone.is_string and zone.name.upper() == "UTC":
        return timestamp.copy()  # the lake's timestamps are UTC already; skips a time-zone lookup per row
    utc_instant = exp.cast(timestamp.copy(), exp.DataType.build("TIMESTAMPTZ"))
    return exp.Anonymous(this="timezone", expressions=[zone.copy(), utc_instant])


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lake_relation_sql(lake_dir: str | Path) -> str:
    """DDL for the `requests` relation: a view over the Parquet lake, or an empty typed table."""
    columns = [(name, duckdb_type(athena_type)) for name, athena_type, _ in LAKE_COLUMNS]
    partitions = [(name, "VARCHAR") for name, _ in PARTITION_KEYS]
    root = requests_root(lake_dir)
    has_files = root.is_dir() and next(root.rglob("*.parquet"), None) is not None
    if not has_files:
        # read_parquet fails on a glob that matches nothing; an empty lake must report nothing.
        ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns + partitions)
        return f"CREATE TABLE {LAKE_TABLE} ({ddl})"
    # Partition values stay strings, as in the Glue table ("2026-11-29", not a DATE).
    hive_types = ", ".join(f"{_sql_string(name)}: 'VARCHAR'" for name, _ in partitions)
    select = ", ".join(f'"{name}"' for name, _ in columns + partitions)
    pattern = _sql_string(str(root / "**" / "*.parquet"))
    return (
        f"CREATE VIEW {LAKE_TABLE} AS SELECT {select} FROM read_parquet({pattern}, "  # noqa: S608 - DDL, quoted above
        f"hive_partitioning=true, hive_types={{{hive_types}}}, union_by_name=true)"
    )


def directory_relation_sql(lake_dir: str | Path, table: str) -> str:
    """DDL for a published directory table (`users`, `group_members`), empty when not published."""
    columns = DIRECTORY_TABLES[table]
    path = Path(lake_dir) / directory_object_key(table)
    if not path.is_file():
        return f"CREATE TABLE {table} ({', '.join(f'{name} VARCHAR' for name in columns)})"
    types = ", ".join(f"{_sql_string(name)}: 'VARCHAR'" for name in columns)
    return (
        f"CREATE VIEW {table} AS SELECT * FROM read_csv({_sql_string(str(path))}, header=true, "  # noqa: S608 - DDL
        f"columns={{{types}}}, quote='\"', escape='\"')"
    )


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, *, lake_dir: str | Path) -> None:
        self.lake_dir = Path(lake_dir)

    def run(self, sql: str, *, on_progress: ProgressCallback | None = None) -> QueryResult:
        duck_sql = athena_to_duckdb(sql)
        query_id = f"duckdb-{uuid.uuid4()}"
        lake_sinks_flush()
        try:
            lake_compact(self.lake_dir)
        except LakeFileError as error:
            raise ReportEngineError(f"The local lake could not be compacted: {error}", query_id=query_id) from error
        connection = duckdb.connect(":memory:")
        try:
            # Compaction deletes files; holding the lock shared keeps it from doing so mid-query.
            with lake_lock(self.lake_dir, exclusive=False):
                connection.execute("SET TimeZone = 'UTC'")
                connection.execute(lake_relation_sql(self.lake_dir))
                for table in DIRECTORY_TABLES:
                    connection.execute(directory_relation_sql(self.lake_dir, table))
                if on_progress:
                    on_progress(30)
                cursor = connection.execute(duck_sql)
                columns = [column[0] for column in cursor.description]
                rows = [list(row) for row in cursor.fetchall()]
        except duckdb.Error as error:
            raise ReportEngineError(f"DuckDB could not run the report: {error}", query_id=query_id) from error
        finally:
            connection.close()
        if on_progress:
            on_progress(90)
        return QueryResult(columns=columns, rows=rows, query_id=query_id)
