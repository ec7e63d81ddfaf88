from __future__ import annotations

from datetime import date

import pytest

from analytics.catalogue import REPORTS
from analytics.params import BoundFilters, ReportParams, ReportParamsInvalid, report_params_parse, report_sql_bind

TODAY = date(2026, 11, 29)


def test_days_means_the_days_up_to_yesterday():
    params = report_params_parse({"days": 7}, today=TODAY)
    assert (params.start_date, params.end_date) == (date(2026, 11, 22), date(2026, 11, 28))


def test_explicit_dates_model_and_group():
    params = report_params_parse(
        {"start_date": "2026-11-01", "end_date": "2026-11-01", "model_id": " amazon.nova-lite-v1:0 ", "group": "Pilots"},
        today=TODAY,
    )
    assert params == ReportParams(date(2026, 11, 1), date(2026, 11, 1), "amazon.nova-lite-v1:0", "Pilots")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"start_date": "2026-13-01", "end_date": "2026-11-02"}, "start date must be a date"),
        ({"start_date": "", "end_date": "2026-11-02"}, "start date is required"),
        ({"start_date": "2026-11-03", "end_date": "2026-11-02"}, "on or before"),
        ({"start_date": "2025-01-01", "end_date": "2026-01-02"}, "at most 366 days"),
        ({"start_date": "2026-11-01", "end_date": "2026-11-02", "model_id": "x' OR '1'='1"}, "model id may contain"),
        ({"start_date": "2026-11-01", "end_date": "2026-11-02", "model_id": "a b"}, "model id may contain"),
        ({"days": 0}, "between 1 and 366"),
        ({"days": "many"}, "whole number"),
    ],
)
def test_invalid_parameters_are_refused_with_a_reason(raw, message):
    with pytest.raises(ReportParamsInvalid, match=message):
        report_params_parse(raw, today=TODAY)


def test_a_leap_year_fits_in_the_range():
    params = report_params_parse({"start_date": "2028-01-01", "end_date": "2028-12-31"}, today=TODAY)
    assert (params.end_date - params.start_date).days == 365


def test_binding_quotes_every_value_as_a_literal():
    params = ReportParams(date(2026, 11, 1), date(2026, 11, 2), model_id=None, group="g")
    sql = " ".join(report_sql_bind(REPORTS[1]["sql"], BoundFilters(params=params, group_subs=["o'brien", "b"])).split())
    assert "IN ('o''brien', 'b')" in sql
    assert "( FALSE OR user_sub IN" in sql
    assert "NULL IS NULL" in sql
    assert ":" not in sql.replace("'", "")  # no placeholder left


def test_binding_rejects_an_unknown_placeholder():
    params = ReportParams(date(2026, 11, 1), date(2026, 11, 2))
    with pytest.raises(ReportParamsInvalid, match=":tenant"):
        report_sql_bind("SELECT 1 FROM requests WHERE x = :tenant", BoundFilters(params=params))


@pytest.mark.parametrize("sql", ["DROP TABLE requests", "INSERT INTO requests SELECT * FROM requests", "DELETE FROM requests"])
def test_a_report_sql_that_is_not_a_select_is_refused(sql):
    from analytics.params import ReportParamsInvalid, report_sql_bind

    with pytest.raises(ReportParamsInvalid, match="one SELECT"):
        report_sql_bind(sql, filters=None)
