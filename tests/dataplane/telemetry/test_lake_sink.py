"""The local lake sink: rows buffered off the hot path, written as complete Parquet files in the
partition of their own UTC day, compacted, and never lost or doubled by a crash mid-write."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplane.telemetry import parquet
from dataplane.telemetry.parquet import lake_compact, requests_root
from dataplane.telemetry.record import RequestRecord
from dataplane.telemetry.sinks import LakeSink, lake_sinks_flush


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def NO_TIMER(seconds: float, callback: object) -> None:  # noqa: N802 - a constant-like stand-in
    """Batches here are written by size, flush or compaction; no stray timer thread outlives a test."""


def record(n: int, moment: datetime) -> RequestRecord:
    return RequestRecord(
        request_id=f"r{n}", ts=moment, user_sub="sub-1", entry="channels", input_tokens=n, output_tokens=1
    )


def lake_files(lake: Path) -> list[Path]:
    return sorted(requests_root(lake).rglob("*.parquet"))


def lake_rows(lake: Path) -> list[dict]:
    return sorted(
        (row for path in lake_files(lake) for row in pq.read_table(path).to_pylist()), key=lambda r: r["request_id"]
    )


def test_rows_wait_in_memory_until_the_batch_is_full(tmp_path):
    sink = LakeSink(tmp_path, max_records=3, max_age_seconds=60, clock=FakeClock(), start_timer=NO_TIMER)
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    sink.emit(record(1, moment))
    sink.emit(record(2, moment))
    assert lake_files(tmp_path) == []  # no file opened by a chat turn until the batch is due
    sink.emit(record(3, moment))
    (path,) = lake_files(tmp_path)
    assert path.parent.name == "dt=2026-11-29"
    assert [r["input_tokens"] for r in lake_rows(tmp_path)] == [1, 2, 3]


def test_a_batch_older_than_its_age_limit_is_written_by_the_next_turn(tmp_path):
    clock = FakeClock()
    sink = LakeSink(tmp_path, max_records=1000, max_age_seconds=60, clock=clock, start_timer=NO_TIMER)
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    sink.emit(record(1, moment))
    clock.now += 61
    sink.emit(record(2, moment))
    assert len(lake_rows(tmp_path)) == 2


def test_a_batch_across_midnight_goes_to_each_records_own_day(tmp_path):
    sink = LakeSink(tmp_path, max_records=10, clock=FakeClock(), start_timer=NO_TIMER)
    midnight = datetime(2026, 11, 30, tzinfo=UTC)
    # 08:59:59 in Seoul is still the 29th in UTC: the partition is the UTC day of `ts`.
    for n, moment in enumerate([midnight - timedelta(milliseconds=1), midnight]):
        sink.emit(record(n, moment))
    lake_sinks_flush()  # what a local report does before reading
    assert [p.parent.name for p in lake_files(tmp_path)] == ["dt=2026-11-29", "dt=2026-11-30"]
    assert [r["ts"] for r in lake_rows(tmp_path)] == [
        datetime(2026, 11, 29, 23, 59, 59, 999000), datetime(2026, 11, 30)  # noqa: DTZ001 - the lake's are naive UTC
    ]


def test_an_idle_process_writes_its_batch_when_the_batch_timer_fires(tmp_path):
    timers: list[tuple[float, object]] = []
    sink = LakeSink(tmp_path, max_records=1000, max_age_seconds=60, clock=FakeClock(),
                    start_timer=lambda seconds, callback: timers.append((seconds, callback)))
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    sink.emit(record(1, moment))
    sink.emit(record(2, moment))
    assert [seconds for seconds, _ in timers] == [60]  # one timer for the batch, none per turn
    assert lake_files(tmp_path) == []
    timers[0][1]()  # a minute later, no further turn came
    assert len(lake_rows(tmp_path)) == 2


def test_compaction_merges_a_partitions_files_into_one_with_every_row(tmp_path):
    sink = LakeSink(tmp_path, max_records=2, clock=FakeClock(), start_timer=NO_TIMER)
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    for n in range(7):
        sink.emit(record(n, moment + timedelta(seconds=n)))
    sink.flush()
    assert len(lake_files(tmp_path)) == 4
    assert lake_compact(tmp_path) == 1
    (compacted,) = lake_files(tmp_path)
    assert compacted.name.startswith("compacted-")
    assert [r["request_id"] for r in pq.read_table(compacted).to_pylist()] == [f"r{n}" for n in range(7)]
    assert lake_compact(tmp_path) == 0  # one file per partition: nothing to do


def test_a_crash_mid_write_leaves_no_visible_file(tmp_path, monkeypatch):
    def torn_write(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", torn_write)
    with pytest.raises(parquet.LakeFileError, match="disk full"):
        parquet.partition_files_write(
            tmp_path, [record(1, datetime(2026, 11, 29, tzinfo=UTC)).to_lake()], file_stem="x"
        )
    assert lake_files(tmp_path) == []  # readers glob *.parquet; nothing torn is ever visible


def test_a_crash_between_compaction_and_cleanup_never_doubles_a_row(tmp_path, monkeypatch):
    sink = LakeSink(tmp_path, max_records=2, clock=FakeClock(), start_timer=NO_TIMER)
    moment = datetime(2026, 11, 29, 12, tzinfo=UTC)
    for n in range(4):
        sink.emit(record(n, moment))
    real_unlink = Path.unlink

    def crash_on_cleanup(self, missing_ok=False):
        if self.suffix == ".parquet":
            raise KeyboardInterrupt("the process died here")
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", crash_on_cleanup)
    with pytest.raises(KeyboardInterrupt):
        lake_compact(tmp_path)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert len(lake_files(tmp_path)) == 3  # the compacted file and both sources it holds
    lake_compact(tmp_path)  # the next compaction (before every local report) finishes the job
    assert [r["request_id"] for r in lake_rows(tmp_path)] == ["r0", "r1", "r2", "r3"]


def test_a_stale_temp_file_is_removed_and_a_fresh_one_kept(tmp_path):
    partition = requests_root(tmp_path) / "dt=2026-11-29"
    partition.mkdir(parents=True)
    stale, fresh = partition / "a.parquet.tmp", partition / "b.parquet.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    old = stale.stat().st_mtime - parquet.STALE_TEMP_SECONDS - 1
    os.utime(stale, (old, old))
    lake_compact(tmp_path)
    assert (stale.exists(), fresh.exists()) == (False, True)


def test_a_row_that_does_not_fit_the_schema_is_refused_with_its_reason(tmp_path):
    row = {**record(1, datetime(2026, 11, 29, tzinfo=UTC)).to_lake(), "input_tokens": "many"}
    with pytest.raises(parquet.LakeFileError, match="does not fit the lake schema"):
        parquet.partition_files_write(tmp_path, [row], file_stem="x")


def test_the_files_have_the_lake_schema(tmp_path):
    sink = LakeSink(tmp_path, max_records=1, clock=FakeClock(), start_timer=NO_TIMER)
    sink.emit(record(1, datetime(2026, 11, 29, tzinfo=UTC)))
    (path,) = lake_files(tmp_path)
    schema = pq.read_schema(path)
    assert schema.field("ts").type == pa.timestamp("ms")
    assert schema.field("input_tokens").type == pa.int64()
    assert schema.names == parquet.arrow_schema().names
