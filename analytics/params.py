"""Report parameters: parse and validate what a person (or a schedule) asked for, then bind it.

Binding choice: placeholders (`:start_date`) in the Athena SQL are replaced, in sqlglot's syntax
tree, by literals that sqlglot builds and quotes (`exp.Literal.string`, `exp.null()`, ...). The
bound tree is rendered once as Athena SQL; DuckDB transpiles that same text. Athena's own
`ExecutionParameters` were not used: they are positional `?` only, cannot expand a variable-length
IN list (a group's subs), and DuckDB would need a second binding path. Input never reaches SQL as
text: values are validated here, and even a value that slipped through would be a quoted literal.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

MAX_RANGE_DAYS = 366
# Bedrock model ids, inference-profile ids and ARNs, OpenAI-style names: no quotes, no spaces.
MODEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
# A value that can never be a real sub, so `IN (...)` stays valid SQL for an empty group.
_NO_SUB = "__no_such_user__"


class ReportParamsInvalid(ValueError):
    """The parameters of a report run are not acceptable; the message says why."""


@dataclass(frozen=True)
class ReportParams:
    start_date: date
    end_date: date
    model_id: str | None = None
    group: str | None = None  # a Django group's name; its members' subs are resolved at run time

    def to_json(self) -> dict[str, Any]:
        return {
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "model_id": self.model_id,
            "group": self.group,
        }


@dataclass(frozen=True)
class BoundFilters:
    """Parameters in the form the SQL placeholders take."""

    params: ReportParams
    group_subs: Sequence[str] = field(default_factory=tuple)


def report_params_parse(raw: Mapping[str, Any], *, today: date) -> ReportParams:
    """Validate a params dict. `{"days": N}` (a schedule's default) means the N days up to yesterday."""
    if raw.get("days") not in (None, "") and not raw.get("start_date"):
        days = _parse_int(raw["days"], "days")
        if not 1 <= days <= MAX_RANGE_DAYS:
            raise ReportParamsInvalid(f"days must be between 1 and {MAX_RANGE_DAYS}.")
        end = today - timedelta(days=1)
        start, end = end - timedelta(days=days - 1), end
    else:
        start = _parse_date(raw.get("start_date"), "start date")
        end = _parse_date(raw.get("end_date"), "end date")
    if start > end:
        raise ReportParamsInvalid("The start date must be on or before the end date.")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ReportParamsInvalid(f"The date range may span at most {MAX_RANGE_DAYS} days.")
    model_id = (raw.get("model_id") or "").strip() or None
    if model_id is not None and not MODEL_ID_PATTERN.match(model_id):
        raise ReportParamsInvalid("The model id may contain only letters, digits and . _ : / @ + -")
    group = (raw.get("group") or "").strip() or None
    if group is not None and len(group) > 150:
        raise ReportParamsInvalid("The group name is too long.")
    return ReportParams(start_date=start, end_date=end, model_id=model_id, group=group)


def report_sql_bind(sql: str, filters: BoundFilters) -> str:
    """Replace the named placeholders of an Athena query by literals; return Athena SQL."""
    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.ParseError as error:
        raise ReportParamsInvalid(f"The report's SQL does not parse: {error}") from error
    if not isinstance(tree, (exp.Select, exp.Union)):
        # Reports read; a definition edited into DDL or DML must never reach the engine.
        raise ReportParamsInvalid("A report's SQL must be one SELECT query.")
    params = filters.params
    scalars: dict[str, exp.Expression] = {
        "start_date": exp.Literal.string(params.start_date.isoformat()),
        "end_date": exp.Literal.string(params.end_date.isoformat()),
        "model_id": exp.Literal.string(params.model_id) if params.model_id else exp.null(),
        "all_users": exp.Boolean(this=params.group is None),
    }
    subs = list(filters.group_subs) or [_NO_SUB]
    for in_list in list(tree.find_all(exp.In)):
        members = in_list.expressions
        if len(members) == 1 and isinstance(members[0], exp.Placeholder) and members[0].name == "group_subs":
            in_list.set("expressions", [exp.Literal.string(sub) for sub in subs])
    for placeholder in list(tree.find_all(exp.Placeholder)):
        if placeholder.name not in scalars:
            raise ReportParamsInvalid(f"The report's SQL uses an unknown parameter :{placeholder.name}")
        placeholder.replace(scalars[placeholder.name].copy())
    return tree.sql(dialect="athena", pretty=True)


def _parse_date(value: Any, label: str) -> date:
    if isinstance(value, date):
        return value
    if not value:
        raise ReportParamsInvalid(f"The {label} is required.")
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ReportParamsInvalid(f"The {label} must be a date like 2026-11-29.") from None


def _parse_int(value: Any, label: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ReportParamsInvalid(f"{label} must be a whole number.") from None
