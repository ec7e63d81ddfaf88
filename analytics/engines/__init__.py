"""Report engines: Athena in AWS, DuckDB over the local lake. Chosen by `ANALYTICS_ENGINE`."""
from __future__ import annotations

from django.conf import settings

from analytics.engines.base import QueryResult, ReportEngine, ReportEngineError

__all__ = ["QueryResult", "ReportEngine", "ReportEngineError", "engine_from_settings"]


def engine_from_settings(*, time_limit_seconds: float) -> ReportEngine:
    """The configured engine, read at call time so `override_settings` works."""
    name = settings.ANALYTICS_ENGINE
    if name == "athena":
        from analytics.engines.athena import AthenaEngine

        if not settings.ATHENA_OUTPUT_LOCATION:
            raise ReportEngineError("ATHENA_OUTPUT_LOCATION is not set: Athena needs an s3:// location for results.")
        return AthenaEngine(
            workgroup=settings.ATHENA_WORKGROUP,
            database=settings.ATHENA_DATABASE,
            output_location=settings.ATHENA_OUTPUT_LOCATION,
            region=settings.AWS_REGION,
            endpoint_url=settings.ATHENA_ENDPOINT_URL or None,
            time_limit_seconds=time_limit_seconds,
        )
    if name == "duckdb":
        from analytics.engines.duckdb import DuckDBEngine

        return DuckDBEngine(lake_dir=settings.GATEWAY_LAKE_DIR)
    raise ReportEngineError(f"Unknown ANALYTICS_ENGINE {name!r}: use 'duckdb' or 'athena'.")
