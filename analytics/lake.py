"""Synthetic request records, written in exactly the layout of the log lake.

The real writer is the telemetry sink (`dataplane/telemetry/sinks.py`); this module writes the
same shape so the report tests and the `generate_demo_lake` command have data without running
chat turns:

- one Parquet file per `dt` partition, `<lake>/requests/dt=YYYY-MM-DD/*.parquet`, written with
  the sink's own writer (`dataplane.telemetry.parquet`);
- one row per record whose columns are exactly `LAKE_COLUMNS`;
- `ts` in the lake's one timestamp format (`dataplane.telemetry.schema.format_lake_timestamp`).

Demo model ids are the seeded catalogue's (`quotas.demo`), so reports and the catalogue agree.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from dataplane.telemetry.parquet import partition_files_write
from dataplane.telemetry.schema import column_names, format_lake_timestamp
from dataplane.windows import WINDOW_KINDS
from quotas.demo import BEDROCK_MODELS, DEMO_MODEL

# Prices per 1k input / output tokens: the seeded catalogue's, so costs match what admins see.
_DEMO_PRICES: dict[str, tuple[float, float]] = {
    str(DEMO_MODEL["model_id"]): (
        float(str(DEMO_MODEL["price_in_per_1k"])), float(str(DEMO_MODEL["price_out_per_1k"]))
    ),
    **{model_id: (float(price_in), float(price_out)) for model_id, _, _, price_in, price_out in BEDROCK_MODELS[1:4]},
}
DEMO_MODELS: tuple[str, ...] = tuple(_DEMO_PRICES)
_OFFLINE_MODEL = DEMO_MODEL["model_id"]
# Shares of synthetic turns that are refused, fail at the model, or are answered from the store;
# the rest are answered by the model.
_REFUSED, _FAILED, _STORED = 0.10, 0.06, 0.14


lake_timestamp = format_lake_timestamp


def lake_write_records(lake_dir: str | Path, records: Iterable[dict[str, Any]]) -> list[Path]:
    """Write records into their `dt` partitions (one new file per partition); return the files."""
    columns = column_names()
    # Every column present, nothing else: the lake has one schema.
    rows = [{name: record.get(name) for name in columns} for record in records]
    return partition_files_write(lake_dir, rows, file_stem=f"synthetic-{uuid.uuid4().hex}")


def synthetic_records(
    *,
    first_day: date,
    days: int,
    user_subs: Sequence[str],
    models: Sequence[str] = DEMO_MODELS,
    turns_per_day: int = 40,
    seed: int = 7,
) -> list[dict[str, Any]]:
    """Deterministic request records: successes, cache and prepared hits, refusals and errors."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    records = []
    for day_index in range(days):
        day = first_day + timedelta(days=day_index)
        for turn in range(turns_per_day):
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randrange(0, 24 * 3600), milliseconds=rng.randrange(0, 1000)
            )
            user_sub = user_subs[turn % len(user_subs)]
            model_id = models[rng.randrange(len(models))]
            records.append(_synthetic_record(rng, moment=moment, user_sub=user_sub, model_id=model_id))
    records.sort(key=lambda record: record["ts"])
    return records


def _synthetic_record(rng: random.Random, *, moment: datetime, user_sub: str, model_id: str) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(column_names())
    record.update(
        request_id=str(uuid.UUID(int=rng.getrandbits(128))),
        ts=lake_timestamp(moment),
        user_sub=user_sub,
        conversation_id=f"conv-{user_sub[:8]}-{rng.randrange(5)}",
        model_id=model_id,
        provider="demo" if model_id == _OFFLINE_MODEL else "bedrock",
        entry=rng.choice(["channels", "appsync"]),
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        saved_tokens=0,
        estimated_usage=False,
        cache="miss",
        outcome="ok",
        cost_usd=0.0,
        latency_ms=rng.randrange(5, 40),
    )
    roll = rng.random()
    if roll < _REFUSED:  # refused before the model: quota or allow-list
        reason = rng.choice([*WINDOW_KINDS, None])
        record.update(
            outcome="refused",
            cache="skipped",
            provider=None,
            error_type="QuotaExceeded" if reason else "ModelNotAllowed",
            refusal_window=reason,
        )
    elif roll < _REFUSED + _FAILED:  # the model failed
        record.update(
            outcome="error",
            error_type=rng.choice(["ModelThrottled", "UpstreamError", "ModelUnavailable"]),
            latency_ms=rng.randrange(100, 3000),
        )
    elif roll < _REFUSED + _FAILED + _STORED:  # answered from the cache or a prepared response
        saved = rng.randrange(50, 900)
        record.update(
            cache=rng.choice(["hit", "hit", "prepared"]),
            provider="cache",
            saved_tokens=saved,
            ttft_ms=rng.randrange(2, 30),
            latency_ms=rng.randrange(5, 60),
            stop_reason="end_turn",
        )
    else:
        input_tokens, output_tokens = rng.randrange(20, 1500), rng.randrange(10, 2500)
        input_price, output_price = _DEMO_PRICES.get(model_id, (0.0001, 0.0004))
        ttft = rng.randrange(150, 1200)
        record.update(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            ttft_ms=ttft,
            latency_ms=ttft + rng.randrange(200, 9000),
            cache=rng.choice(["miss", "miss", "bypass"]),
            privacy_reason=None,
            stop_reason="end_turn",
            cost_usd=round(input_tokens / 1000 * input_price + output_tokens / 1000 * output_price, 8),
        )
        if record["cache"] == "bypass":
            record["privacy_reason"] = rng.choice(["policy", "client", "pii"])
    return record
