"""What every report engine offers: run one Athena-dialect query, return typed rows."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

ProgressCallback = Callable[[int], None]


class ReportEngineError(Exception):
    """A query could not run or did not finish; the message is meant for the analyst."""

    def __init__(self, message: str, *, query_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.query_id = query_id


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    query_id: str = ""


class ReportEngine(Protocol):
    name: str

    def run(self, sql: str, *, on_progress: ProgressCallback | None = None) -> QueryResult:
        """Run `sql` (Athena dialect, parameters already bound)."""
        ...
