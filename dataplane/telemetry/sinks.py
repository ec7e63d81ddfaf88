"""Where request records go: stdout (CloudWatch Logs + EMF), the local lake, Firehose.

A sink never raises into a chat turn: telemetry failing must not fail the user's answer, so
errors are logged and counted instead.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import timezone
from pathlib import Path
from typing import IO, Protocol

from dataplane.permissions import Resource, need
from dataplane.telemetry.emf import emf_document
from dataplane.telemetry.record import RequestRecord
from dataplane.telemetry.schema import PARTITION_PATH_TEMPLATE

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
    """gzip JSON lines laid out like the S3 lake: `year=/month=/day=/hour=/`.

    Each process appends gzip members to its own file per hour; concatenated gzip members are
    one valid gzip stream for DuckDB and Athena alike, and no reader ever sees a torn record.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._file_name = f"gateway-{socket.gethostname()}-{os.getpid()}.json.gz"

    def path_for(self, record: RequestRecord) -> Path:
        ts = record.ts.astimezone(timezone.utc)
        partition = PARTITION_PATH_TEMPLATE.format(year=ts.year, month=ts.month, day=ts.day, hour=ts.hour)
        return self.root / partition / self._file_name

    def emit(self, record: RequestRecord) -> None:
        line = (json.dumps(record.to_lake(), ensure_ascii=False) + "\n").encode("utf-8")
        path = self.path_for(record)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as raw, gzip.GzipFile(fileobj=raw, mode="ab") as member:
                member.write(line)


# The one Firehose call below (`put_record`), declared for the chat role's grant.
FIREHOSE_SINK_NEEDS = (need(Resource.REQUEST_STREAM, "firehose:PutRecord", why="ship one request record"),)


class FirehoseSink:
    """Kinesis Data Firehose `PutRecord`; Firehose gzips and partitions into S3."""

    def __init__(self, *, stream_name: str, client) -> None:  # noqa: ANN001
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
            except Exception:  # noqa: BLE001 - telemetry must never fail a chat turn
                self.failures += 1
                logger.exception("telemetry sink %s failed for request %s", type(sink).__name__, record.request_id)


class MemorySink:
    """Keeps records in a list: for tests and the benchmark."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def emit(self, record: RequestRecord) -> None:
        self.records.append(record)
