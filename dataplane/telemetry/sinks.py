"""Where request records go: stdout (CloudWatch Logs + EMF), the local lake, Firehose.

A sink never raises into a chat turn: telemetry failing must not fail the user's answer, so
errors are logged and counted instead.
"""
from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

from dataplane.permissions import Resource, need
from dataplane.telemetry.emf import emf_document
from dataplane.telemetry.record import RequestRecord

logger = logging.getLogger("dataplane.telemetry")


class TelemetrySink(Protocol):
    def emit(self, record: RequestRecord) -> None: ...


RecordMetrics = Callable[[RequestRecord], None]


class StdoutSink:
    """One JSON log line and one EMF line per record (CloudWatch Logs in Lambda).

    `record_metrics` replaces the built-in EMF encoder (the Lambda passes Powertools').
    """

    def __init__(
        self, *, namespace: str, stream: IO[str] | None = None, record_metrics: RecordMetrics | None = None
    ) -> None:
        self.namespace = namespace
        self.stream = stream
        self.record_metrics = record_metrics

    def emit(self, record: RequestRecord) -> None:
        out = self.stream or sys.stdout
        out.write(json.dumps({"message": "chat_turn", **record.to_lake()}, ensure_ascii=False) + "\n")
        if self.record_metrics is None:
            out.write(json.dumps(emf_document(record, namespace=self.namespace)) + "\n")
        out.flush()
        if self.record_metrics is not None:
            self.record_metrics(record)


class LakeSink:
    """Parquet files laid out like the S3 lake (`requests/dt=YYYY-MM-DD/`), written in batches.

    A chat turn only appends its row to a buffer: the buffer becomes files (one per `dt`
    partition, written to a temp name and renamed, see `telemetry.parquet`) once it holds
    `max_records` rows or its oldest row is `max_age_seconds` old (a timer started with the
    batch, so an idle process writes it too), at process exit, and when a local report in this
    process reads the lake (`lake_sinks_flush`). Small files are merged by compaction before
    each local report. A process killed outright loses at most its unwritten batch.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        max_records: int = 1000,
        max_age_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        start_timer: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        if max_records < 1 or max_age_seconds <= 0:
            raise ValueError("A lake sink needs max_records >= 1 and max_age_seconds > 0.")
        self.root = Path(root)
        self.max_records = max_records
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._start_timer = start_timer or _daemon_timer
        self._lock = threading.Lock()
        self._buffer: list[dict] = []
        self._oldest_at = 0.0
        self._batches = itertools.count()
        self._file_prefix = f"part-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        _OPEN_LAKE_SINKS.add(self)

    def emit(self, record: RequestRecord) -> None:
        row = record.to_lake()
        with self._lock:
            if not self._buffer:
                self._oldest_at = self._clock()
                # One timer per batch, not per turn; if the batch was written before it fires,
                # it flushes whatever came since (or nothing).
                self._start_timer(self.max_age_seconds, self._flush_quietly)
            self._buffer.append(row)
            due = len(self._buffer) >= self.max_records or self._clock() - self._oldest_at >= self.max_age_seconds
            if due:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:
            logger.exception("could not write a lake batch under %s", self.root)

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        from dataplane.telemetry.parquet import partition_files_write

        rows, self._buffer = self._buffer, []
        partition_files_write(self.root, rows, file_stem=f"{self._file_prefix}-{next(self._batches):06d}")


def _daemon_timer(seconds: float, callback: Callable[[], None]) -> None:
    timer = threading.Timer(seconds, callback)
    timer.daemon = True  # never keeps a process alive; exit flushes through atexit instead
    timer.start()


# Every lake sink of this process, so exit and local reports can flush them (weak: a sink
# dropped by its gateway goes away).
_OPEN_LAKE_SINKS: weakref.WeakSet[LakeSink] = weakref.WeakSet()


def lake_sinks_flush() -> None:
    """Write every buffered lake row of this process (before a local report reads the lake)."""
    for sink in list(_OPEN_LAKE_SINKS):
        try:
            sink.flush()
        except Exception:
            logger.exception("could not flush the lake sink at %s", sink.root)


atexit.register(lake_sinks_flush)


# The one Firehose call below (`put_record`), declared for the chat role's grant.
FIREHOSE_SINK_NEEDS = (need(Resource.REQUEST_STREAM, "firehose:PutRecord", why="ship one request record"),)


class FirehoseSink:
    """Kinesis Data Firehose `PutRecord` of one JSON row; Firehose partitions it by `ts` and converts to Parquet."""

    def __init__(self, *, stream_name: str, client) -> None:
        self.stream_name = stream_name
        self.client = client

    def emit(self, record: RequestRecord) -> None:
        data = (json.dumps(record.to_lake(), ensure_ascii=False) + "\n").encode("utf-8")
        self.client.put_record(DeliveryStreamName=self.stream_name, Record={"Data": data})


class FanOutSink:
    """Sends every record to each sink; one sink failing does not stop the others."""

    def __init__(self, sinks: Iterable[TelemetrySink]) -> None:
        self.sinks = list(sinks)
        self.failures = 0

    def emit(self, record: RequestRecord) -> None:
        for sink in self.sinks:
            try:
                sink.emit(record)
            except Exception:
                self.failures += 1
                logger.exception("telemetry sink %s failed for request %s", type(sink).__name__, record.request_id)


class MemorySink:
    """Keeps records in a list: for tests and the benchmark."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def emit(self, record: RequestRecord) -> None:
        self.records.append(record)
