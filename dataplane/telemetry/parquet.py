"""The local log lake's files: Parquet under `<lake>/requests/dt=YYYY-MM-DD/`, laid out like S3.

Two rules make the lake safe to read at any moment and after any crash:

- a file becomes visible only complete: it is written under a `.tmp` name (which no reader
  globs) and renamed with `os.replace`, atomic on POSIX;
- compaction merges a partition's files into one `compacted-*.parquet` whose footer lists the
  files it replaced. It is renamed into place before those files are deleted; a crash in between
  leaves both, and the next compaction (run before every local report) deletes the listed
  leftovers before anything else, so a record is never counted twice by a report.

Writers never take the lock: adding a complete file is already safe. Compaction takes it
exclusively and readers shared, so a report never globs a file that compaction then deletes.

pyarrow is imported lazily: the Lambda (which ships JSON to Firehose) never loads this module.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataplane.telemetry.schema import LAKE_COLUMNS, PARTITION_PATH_TEMPLATE, parse_lake_timestamp

REQUESTS_FOLDER = "requests"
PARQUET_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
COMPACTED_PREFIX = "compacted-"
_SOURCES_KEY = b"gateway.compacted_from"
_LOCK_NAME = ".compaction.lock"
# A `.tmp` file older than this belongs to a writer that died; younger ones may still be written.
STALE_TEMP_SECONDS = 600

_ARROW_TYPES = {
    "string": "string",
    "timestamp": "timestamp[ms]",
    "bigint": "int64",
    "boolean": "bool",
    "double": "float64",
}


class LakeFileError(Exception):
    """A lake file could not be written or compacted; the message names the file."""


def requests_root(lake_dir: str | os.PathLike) -> Path:
    return Path(lake_dir) / REQUESTS_FOLDER


def arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [pa.field(name, pa.type_for_alias(_ARROW_TYPES[athena_type])) for name, athena_type, _ in LAKE_COLUMNS]
    )


def _arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    ts = row.get("ts")
    if isinstance(ts, str):
        ts = parse_lake_timestamp(ts)
    if isinstance(ts, datetime) and ts.tzinfo is not None:
        # The lake's timestamps are naive UTC (Athena's `timestamp`), never zoned.
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return {**row, "ts": ts}


def rows_table(rows: Sequence[dict[str, Any]]) -> Any:
    """Lake rows (dicts with every column; `ts` a lake timestamp string or UTC datetime) as Arrow."""
    import pyarrow as pa

    try:
        return pa.Table.from_pylist([_arrow_row(row) for row in rows], schema=arrow_schema())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise LakeFileError(f"A lake row does not fit the lake schema: {error}") from error


def _write_atomically(table: Any, final_path: Path, *, metadata: dict[bytes, bytes] | None = None) -> Path:
    import pyarrow.parquet as pq

    final_path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = final_path.with_name(final_path.name + TEMP_SUFFIX)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    try:
        pq.write_table(table, temp_path, compression="zstd")
        os.replace(temp_path, final_path)
    except OSError as error:
        temp_path.unlink(missing_ok=True)
        raise LakeFileError(f"Could not write the lake file {final_path}: {error}") from error
    return final_path


def partition_files_write(lake_dir: str | os.PathLike, rows: Sequence[dict[str, Any]], *, file_stem: str) -> list[Path]:
    """Write rows into their `dt` partitions, one new complete file per partition; return them."""
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        ts = row["ts"]
        day = ts[:10] if isinstance(ts, str) else ts.strftime("%Y-%m-%d")
        by_partition.setdefault(PARTITION_PATH_TEMPLATE.format(dt=day), []).append(row)
    root = requests_root(lake_dir)
    return [
        _write_atomically(rows_table(partition_rows), root / partition / f"{file_stem}{PARQUET_SUFFIX}")
        for partition, partition_rows in sorted(by_partition.items())
    ]


@contextlib.contextmanager
def lake_lock(lake_dir: str | os.PathLike, *, exclusive: bool) -> Iterator[None]:
    """Compaction holds the lake exclusively; readers share it (an advisory `flock`)."""
    root = requests_root(lake_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / _LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lake_compact(lake_dir: str | os.PathLike) -> int:
    """Merge each partition's files into one; return how many partitions were rewritten."""
    root = requests_root(lake_dir)
    if not root.is_dir():
        return 0
    rewritten = 0
    with lake_lock(lake_dir, exclusive=True):
        for partition in sorted(p for p in root.iterdir() if p.is_dir()):
            _finish_interrupted_compaction(partition)
            _remove_stale_temp_files(partition)
            files = sorted(partition.glob(f"*{PARQUET_SUFFIX}"))
            if len(files) > 1:
                _compact_partition(partition, files)
                rewritten += 1
    return rewritten


def _compact_partition(partition: Path, files: list[Path]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        merged = pa.concat_tables([pq.read_table(path, schema=arrow_schema()) for path in files])
    except (OSError, pa.ArrowInvalid) as error:
        raise LakeFileError(f"Could not read the lake partition {partition} to compact it: {error}") from error
    merged = merged.sort_by("ts")
    sources = json.dumps([path.name for path in files]).encode()
    target = partition / f"{COMPACTED_PREFIX}{uuid.uuid4().hex}{PARQUET_SUFFIX}"
    _write_atomically(merged, target, metadata={_SOURCES_KEY: sources})
    for path in files:
        path.unlink(missing_ok=True)


def _finish_interrupted_compaction(partition: Path) -> None:
    """Delete files a complete compacted file already holds (a crash came before their deletion)."""
    import pyarrow.parquet as pq

    for compacted in partition.glob(f"{COMPACTED_PREFIX}*{PARQUET_SUFFIX}"):
        metadata = pq.read_schema(compacted).metadata or {}
        for name in json.loads(metadata.get(_SOURCES_KEY, b"[]")):
            if name != compacted.name:
                (partition / name).unlink(missing_ok=True)


def _remove_stale_temp_files(partition: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for temp in partition.glob(f"*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
