"""Quota windows: the clock-aligned 10-minute window and the calendar month.

A window is named by a sort key (`10m#2026-11-29T05:10`, `month#2026-11`); its end is when it
resets. Ten-minute windows are aligned on UTC; months follow the configured time zone, so a
Seoul office's month starts at midnight in Seoul.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def gettext_noop(message: str) -> str:
    """Marks a label for Django's `makemessages` (which knows this name) without importing
    Django: the control plane translates it with `gettext(label)` when it shows it."""
    return message


# The window kinds as they appear on the wire (`tokenUsage`, `QuotaExceeded.window`), in sort
# keys and in the request log's `refusal_window`.
TEN_MINUTE = "10m"
MONTH = "month"
WINDOW_KINDS = (TEN_MINUTE, MONTH)
# A group's pooled budget: the same calendar month, charged to the group's counters. Its own
# kind on the wire and in the request log, since the user's own month may have room left.
GROUP_MONTH = "group_month"


@dataclass(frozen=True)
class WindowLabels:
    """How people name a window: `title` heads its usage bar, `adjective` goes in sentences
    ("your 10-minute quota"). English here; Django translates both, the page receives them."""

    title: str
    adjective: str


WINDOW_LABELS: dict[str, WindowLabels] = {
    TEN_MINUTE: WindowLabels(title=gettext_noop("10 minutes"), adjective=gettext_noop("10-minute")),
    MONTH: WindowLabels(title=gettext_noop("This month"), adjective=gettext_noop("monthly")),
    GROUP_MONTH: WindowLabels(title=gettext_noop("Group, this month"), adjective=gettext_noop("monthly")),
}

# A usage bar turns amber at WARN_PERCENT and red at FULL_PERCENT of its limit (a limit of 0
# is full at once); the chat page and the admin share these levels and their names.
WARN_PERCENT = 75
FULL_PERCENT = 90
USAGE_LEVELS = ("ok", "warn", "bad", "unlimited")


def usage_level(*, used: int, limit: int | None) -> str:
    """`ok`, `warn` or `bad` for a window's usage against its limit; `unlimited` without one."""
    if limit is None:
        return "unlimited"
    if limit <= 0:
        return "bad"
    percent = used * 100 / limit
    if percent >= FULL_PERCENT:
        return "bad"
    return "warn" if percent >= WARN_PERCENT else "ok"


def usage_thresholds() -> dict[str, int]:
    """The levels as the chat page's config carries them to its JavaScript."""
    return {"warnPercent": WARN_PERCENT, "fullPercent": FULL_PERCENT}


TEN_MINUTES = timedelta(minutes=10)
# Items outlive their window a little, so a late settle still finds its row and admins can
# look back at the previous window; DynamoDB's TTL then removes them.
TEN_MINUTE_GRACE = timedelta(hours=2)
MONTH_GRACE = timedelta(days=35)


@dataclass(frozen=True)
class Window:
    kind: str  # TEN_MINUTE | MONTH
    key: str  # sort key, e.g. "10m#2026-11-29T05:10"
    starts_at: datetime
    resets_at: datetime
    expires_at: int  # epoch seconds for the TTL attribute


def ten_minute_window(now: datetime) -> Window:
    now = now.astimezone(UTC)
    start = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    end = start + TEN_MINUTES
    return Window(
        kind=TEN_MINUTE,
        key=f"{TEN_MINUTE}#{start:%Y-%m-%dT%H:%M}",
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
        kind=MONTH,
        key=f"{MONTH}#{start:%Y-%m}",
        starts_at=start,
        resets_at=end,
        expires_at=int((end + MONTH_GRACE).timestamp()),
    )


def current_windows(now: datetime, tz: str = "UTC") -> tuple[Window, Window]:
    return ten_minute_window(now), month_window(now, tz)
