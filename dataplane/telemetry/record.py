"""One structured record per chat turn, with the columns of `schema.LAKE_COLUMNS`."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dataplane.telemetry.schema import column_names, format_lake_timestamp

PROMPT_PREVIEW_CHARS = 200
_LAKE_COLUMN_NAMES = tuple(column_names())


@dataclass
class RequestRecord:
    request_id: str
    ts: datetime
    user_sub: str
    entry: str
    conversation_id: str | None = None
    model_id: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    saved_tokens: int = 0
    estimated_usage: bool = False
    ttft_ms: int | None = None
    latency_ms: int | None = None
    cache: str = "skipped"
    privacy_reason: str | None = None
    outcome: str = "ok"
    error_type: str | None = None
    refusal_window: str | None = None
    stop_reason: str | None = None
    cost_usd: float = 0.0
    prompt_preview: str | None = None
    guardrail_action: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_lake(self) -> dict[str, Any]:
        """The record as one JSON-lines row of the lake (see `schema` for the `ts` format)."""
        # getattr, not dataclasses.asdict: asdict deep-copies every field, which cost more than
        # the rest of the record path together (every field here is a scalar).
        row = {name: getattr(self, name, None) for name in _LAKE_COLUMN_NAMES}
        row["ts"] = format_lake_timestamp(self.ts)
        return row


def utc_now() -> datetime:
    return datetime.now(UTC)
