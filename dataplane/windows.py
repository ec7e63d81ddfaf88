"""Quota windows: the clock-aligned 10-minute window and the calendar month.

A window is named by a sort key (`10m#2026-11-29T05:10`, `month#2026-11`); its end is when it
resets. Ten-minute windows are aligned on UTC; months follow the configured time zone, so a
Seoul office's month starts at midnight in Seoul.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

TEN_MINUTES = timedelta(minutes=10)
# Items outlive their window a little, so a late settle still finds its row and admins can
# look back at the previous window; DynamoDB's TTL then removes them.
TEN_MINUTE_GRACE = timedelta(hours=2)
MONTH_GRACE = timedelta(days=35)


@dataclass(frozen=True)
class Window:
    kind: str  # "10m" | "month"
    key: str  # sort key, e.g. "10m#2026-11-29T05:10"
    starts_at: datetime
    resets_at: datetime
    expires_at: int  # epoch seconds for the TTL attribute


def ten_minute_window(now: datetime) -> Window:
    now = now.astimezone(UTC)
    start = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    end = start + TEN_MINUTES
    return Window(
        kind="10m",
        key=f"10m#{start:%Y-%m-%dT%H:%M}",
        starts_at=start,
        resets_at=end,
        expires_at=int((end + TEN_MINUTE_GRACE).timestamp()),
    )


def month_window(now: datetime, tz: str = "UTC") -> Window:
    local = now.astimezone(ZoneInfo(tz))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    carry, month_index = divmod(start.month, 12)  # December carries into next year's January
    end = start.replace(year=start.year + carry, month=month_index + 1)
    return Window(
        kind="month",
        key=f"month#{start:%Y-%m}",
        starts_at=start,
        resets_at=end,
        expires_at=int((end + MONTH_GRACE).timestamp()),
    )


def current_windows(now: datetime, tz: str = "UTC") -> tuple[Window, Window]:
    return ten_minute_window(now), month_window(now, tz)
