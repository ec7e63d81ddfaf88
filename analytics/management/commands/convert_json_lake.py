"""Rewrite a local lake from before Parquet (gzip JSON lines under year=/month=/day=/hour=/) into
the Parquet layout the reports read (`requests/dt=YYYY-MM-DD/`).

Each hour folder becomes one file named after it; its JSON files are then renamed to
`*.json.gz.converted` (kept, not deleted: remove them once the reports look right). A crash
between the two steps only means the next run rewrites the same file name; a run after the
rename finds nothing left to convert, so rows are never doubled, even after compaction merged
the converted files.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dataplane.telemetry.parquet import LakeFileError, partition_files_write
from dataplane.telemetry.schema import LAKE_COLUMNS, duckdb_type


class Command(BaseCommand):
    help = "Convert the local JSON-lines lake (year=/month=/day=/hour=/*.json.gz) into the Parquet lake."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lake-dir", default=None, help="Default: GATEWAY_LAKE_DIR.")

    def handle(self, *args, lake_dir: str | None, **options) -> None:
        root = Path(lake_dir or settings.GATEWAY_LAKE_DIR)
        hours = sorted({path.parent for path in root.glob("year=*/month=*/day=*/hour=*/*.json.gz")})
        if not hours:
            self.stdout.write(f"No JSON lake files under {root}; nothing to convert.")
            return
        columns = "{" + ", ".join(f"'{name}': '{duckdb_type(kind)}'" for name, kind, _ in LAKE_COLUMNS) + "}"
        total = 0
        for hour in hours:
            pattern = str(hour / "*.json.gz").replace("'", "''")
            try:
                relation = duckdb.sql(
                    # The path is quoted above, the columns are the lake schema's.
                    f"SELECT * FROM read_json('{pattern}', columns={columns}, format='newline_delimited')"  # noqa: S608
                )
                assert relation is not None  # a SELECT always gives a relation
                names = relation.columns
                rows = [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
                stem = "converted-" + "-".join(part.split("=")[1] for part in hour.relative_to(root).parts)
                partition_files_write(root, rows, file_stem=stem)
                for source in hour.glob("*.json.gz"):
                    source.rename(source.with_name(source.name + ".converted"))
            except (duckdb.Error, LakeFileError, OSError) as error:
                raise CommandError(f"Could not convert {hour}: {error}") from error
            total += len(rows)
        self.stdout.write(f"Converted {total} records from {len(hours)} hour folders under {root}.")
