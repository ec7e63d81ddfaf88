"""The embedded report engine: DuckDB over the local JSON-lines lake.

The report SQL is Athena's dialect; sqlglot transpiles it (read="athena", write="duckdb"). One
deliberate change on the way: Athena's `approx_percentile` becomes DuckDB's exact
`quantile_disc` (nearest rank) instead of `approx_quantile`, whose t-digest estimate is not a
value of the data set and is not repeatable on small samples. Athena's approximation returns a
value close to the same rank, so local figures are the exact ones Athena approximates.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from analytics.engines.base import ProgressCallback, QueryResult, ReportEngineError
from dataplane.telemetry.schema import LAKE_COLUMNS, PARTITION_KEYS, duckdb_type

LAKE_TABLE = "requests"


def athena_to_duckdb(sql: str) -> str:
    """Transpile one Athena query into DuckDB's dialect."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise ReportEngineError(f"The report's SQL does not parse as Athena SQL: {error}") from error

    def exact_percentile(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.ApproxQuantile):
            return exp.Anonymous(this="quantile_disc", expressions=[node.this.copy(), node.args["quantile"].copy()])
        return node

    return tree.transform(exact_percentile).sql(dialect="duckdb")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lake_relation_sql(lake_dir: str | Path) -> str:
    """DDL for the `requests` relation: a view over the lake, or an empty typed table."""
    columns = [(name, duckdb_type(athena_type)) for name, athena_type, _ in LAKE_COLUMNS]
    partitions = [(name, "VARCHAR") for name, _ in PARTITION_KEYS]
    root = Path(lake_dir)
    has_files = root.is_dir() and next(root.rglob("*.json.gz"), None) is not None
    if not has_files:
        # read_json fails on a glob that matches nothing; an empty lake must report nothing.
        ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns + partitions)
        return f"CREATE TABLE {LAKE_TABLE} ({ddl})"
    column_map = ", ".join(f"{_sql_string(name)}: {_sql_string(kind)}" for name, kind in columns)
    # Partition values stay strings, as in the Glue table ("05", not 5).
    hive_types = ", ".join(f"{_sql_string(name)}: 'VARCHAR'" for name, _ in partitions)
    pattern = _sql_string(str(root / "**" / "*.json.gz"))
    return (
        f"CREATE VIEW {LAKE_TABLE} AS SELECT * FROM read_json({pattern}, columns={{{column_map}}}, "
        f"format='newline_delimited', hive_partitioning=true, hive_types={{{hive_types}}})"
    )


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, *, lake_dir: str | Path) -> None:
        self.lake_dir = Path(lake_dir)

    def run(self, sql: str, *, on_progress: ProgressCallback | None = None) -> QueryResult:
        duck_sql = athena_to_duckdb(sql)
        query_id = f"duckdb-{uuid.uuid4()}"
        connection = duckdb.connect(":memory:")
        try:
            connection.execute(lake_relation_sql(self.lake_dir))
            if on_progress:
                on_progress(30)
            cursor = connection.execute(duck_sql)
            columns = [column[0] for column in cursor.description]
            types = [str(column[1]) for column in cursor.description]
            rows = [list(row) for row in cursor.fetchall()]
        except duckdb.Error as error:
            raise ReportEngineError(f"DuckDB could not run the report: {error}", query_id=query_id) from error
        finally:
            connection.close()
        if on_progress:
            on_progress(90)
        return QueryResult(columns=columns, rows=rows, query_id=query_id, column_types=types)
