"""Report parameters: parse and validate what a person (or a schedule) asked for, then bind it.

Binding choice: placeholders (`:start_date`) in the Athena SQL are replaced, in sqlglot's syntax
tree, by literals that sqlglot builds and quotes (`exp.Literal.string`, `exp.null()`, ...). The
bound tree is rendered once as Athena SQL; DuckDB transpiles that same text. Athena's own
`ExecutionParameters` were not used: they are positional `?` only, cannot expand a variable-length
IN list, and DuckDB would need a second binding path. Input never reaches SQL as text: values are
validated here, and even a value that slipped through would be a quoted literal. The bound SQL is
what a run stores, so an analyst can paste it into the Athena console as it is.

Dates are calendar days in the report's time zone (an IANA name, default
`GATEWAY_MONTH_TIMEZONE`). Binding turns them into the UTC instants `[start_ts, end_ts)` that
filter `ts`, and the UTC partitions `first_dt..last_dt` that hold those instants (a day in
Asia/Seoul spans two UTC days), so Athena prunes and no turn near midnight is lost.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlglot
from sqlglot import exp

from dataplane.model_ids import MODEL_ID_PATTERN

MAX_RANGE_DAYS = 366
GROUP_NAME_MAX_LENGTH = 150  # django.contrib.auth's Group.name
# Calendar periods a schedule (or a person) can ask for instead of explicit dates.
PERIODS = ("today", "previous_day", "previous_week", "previous_month", "this_week", "this_month")


def gettext_noop(message: str) -> str:
    """Marks a message for the translation catalogue; this module stays importable without Django."""
    return message


class ReportParamsError(ValueError):
    """The parameters of a report run are not acceptable; the message says why.

    `str(error)` is English; `localized()` is the same sentence in the active language (pages
    and forms use it). A `label` value names a form field and is translated too."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message % values if values else message)
        self.message, self.values = message, values

    def localized(self) -> str:
        from django.utils.translation import gettext

        values = {key: gettext(value) if key == "label" else value for key, value in self.values.items()}
        return gettext(self.message) % values if values else gettext(self.message)


@dataclass(frozen=True)
class ReportParams:
    start_date: date
    end_date: date
    model_id: str | None = None
    group: str | None = None  # a Django group's name; joined through the published `group_members`
    time_zone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        return {
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "model_id": self.model_id,
            "group": self.group,
            "time_zone": self.time_zone,
        }

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants: local midnight of the first day to local midnight after the last."""
        zone = _zone(self.time_zone)
        start = datetime.combine(self.start_date, time(), tzinfo=zone).astimezone(UTC)
        end = datetime.combine(self.end_date + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        return start, end


@dataclass(frozen=True)
class BoundFilters:
    """Parameters in the form the SQL placeholders take."""

    params: ReportParams


def local_today(*, now: datetime, time_zone: str) -> date:
    return now.astimezone(_zone(time_zone)).date()


def report_params_parse(raw: Mapping[str, Any], *, now: datetime, default_time_zone: str) -> ReportParams:
    """Validate a params dict.

    Besides explicit dates: `{"days": N}` means the N days up to and including today, and
    `{"period": "previous_month"}` (or another of `PERIODS`) a calendar period, both in the
    report's time zone.
    """
    time_zone = (raw.get("time_zone") or "").strip() or default_time_zone
    today = local_today(now=now, time_zone=time_zone)
    if raw.get("period") and not raw.get("start_date"):
        start, end = period_dates(str(raw["period"]), today=today)
    elif raw.get("days") not in (None, "") and not raw.get("start_date"):
        days = _parse_int(raw["days"], "days")
        if not 1 <= days <= MAX_RANGE_DAYS:
            raise ReportParamsError(gettext_noop("days must be between 1 and %(most)s."), most=MAX_RANGE_DAYS)
        # Up to today: a new installation's first run shows today's turns, not an empty page.
        start, end = today - timedelta(days=days - 1), today
    else:
        start = _parse_date(raw.get("start_date"), gettext_noop("start date"))
        end = _parse_date(raw.get("end_date"), gettext_noop("end date"))
    if start > end:
        raise ReportParamsError(gettext_noop("The start date must be on or before the end date."))
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ReportParamsError(gettext_noop("The date range may span at most %(most)s days."), most=MAX_RANGE_DAYS)
    model_id = (raw.get("model_id") or "").strip() or None
    if model_id is not None and not MODEL_ID_PATTERN.match(model_id):
        raise ReportParamsError(gettext_noop("The model id may contain only letters, digits and . _ : / @ + -"))
    group = (raw.get("group") or "").strip() or None
    if group is not None and len(group) > GROUP_NAME_MAX_LENGTH:
        raise ReportParamsError(gettext_noop("The group name is too long."))
    return ReportParams(start_date=start, end_date=end, model_id=model_id, group=group, time_zone=time_zone)


def period_dates(period: str, *, today: date) -> tuple[date, date]:
    """First and last day of a calendar period, relative to `today` (both included)."""
    if period == "today":
        return today, today
    if period == "previous_day":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "this_week":  # ISO weeks: Monday to Sunday
        return today - timedelta(days=today.weekday()), today
    if period == "previous_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if period == "this_month":
        return today.replace(day=1), today
    if period == "previous_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    raise ReportParamsError(
        gettext_noop("Unknown period %(period)s: use one of %(periods)s."),
        period=repr(period),
        periods=", ".join(PERIODS),
    )


def report_sql_bind(sql: str, filters: BoundFilters) -> str:
    """Replace the named placeholders of an Athena query by literals; return Athena SQL."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise ReportParamsError(f"The report's SQL does not parse: {error}") from error
    if not isinstance(tree, (exp.Select, exp.Union)):
        # Reports read; a definition edited into DDL or DML must never reach the engine.
        raise ReportParamsError("A report's SQL must be one SELECT query.")
    params = filters.params
    start_ts, end_ts = params.utc_bounds()
    last_instant = end_ts - timedelta(milliseconds=1)
    scalars: dict[str, exp.Expression] = {
        "start_date": exp.Literal.string(params.start_date.isoformat()),
        "end_date": exp.Literal.string(params.end_date.isoformat()),
        "start_ts": exp.Literal.string(start_ts.strftime("%Y-%m-%d %H:%M:%S")),
        "end_ts": exp.Literal.string(end_ts.strftime("%Y-%m-%d %H:%M:%S")),
        "first_dt": exp.Literal.string(start_ts.date().isoformat()),
        "last_dt": exp.Literal.string(last_instant.date().isoformat()),
        "time_zone": exp.Literal.string(params.time_zone),
        "model_id": exp.Literal.string(params.model_id) if params.model_id else exp.null(),
        "all_users": exp.Boolean(this=params.group is None),
        "group_name": exp.Literal.string(params.group or ""),
    }
    for placeholder in list(tree.find_all(exp.Placeholder)):
        if placeholder.name not in scalars:
            raise ReportParamsError(f"The report's SQL uses an unknown parameter :{placeholder.name}")
        placeholder.replace(scalars[placeholder.name].copy())
    return tree.sql(dialect="athena", pretty=True)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportParamsError(
            gettext_noop("Unknown time zone %(zone)s: use an IANA name like Asia/Seoul or UTC."), zone=repr(name)
        ) from None


def _parse_date(value: Any, label: str) -> date:
    if isinstance(value, date):
        return value
    if not value:
        raise ReportParamsError(gettext_noop("The %(label)s is required."), label=label)
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ReportParamsError(gettext_noop("The %(label)s must be a date like 2026-11-29."), label=label) from None


def _parse_int(value: Any, label: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ReportParamsError(gettext_noop("%(label)s must be a whole number."), label=label) from None
