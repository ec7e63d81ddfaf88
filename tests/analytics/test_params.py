from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from analytics.catalogue import REPORTS
from analytics.params import BoundFilters, ReportParams, ReportParamsError, report_params_parse, report_sql_bind

# Sunday 29 November 2026, 20:00 UTC: already Monday 30 November in Seoul.
NOW = datetime(2026, 11, 29, 20, tzinfo=UTC)


def parse(raw: dict, zone: str = "UTC") -> ReportParams:
    return report_params_parse(raw, now=NOW, default_time_zone=zone)


def test_days_means_the_days_up_to_and_including_today():
    params = parse({"days": 7})
    assert (params.start_date, params.end_date) == (date(2026, 11, 23), date(2026, 11, 29))


def test_today_is_today_in_the_report_time_zone():
    assert parse({"days": 1}, "Asia/Seoul").end_date == date(2026, 11, 30)
    assert parse({"days": 1, "time_zone": "Asia/Seoul"}).time_zone == "Asia/Seoul"


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("today", date(2026, 11, 29), date(2026, 11, 29)),
        ("previous_day", date(2026, 11, 28), date(2026, 11, 28)),
        ("this_week", date(2026, 11, 23), date(2026, 11, 29)),
        ("previous_week", date(2026, 11, 16), date(2026, 11, 22)),
        ("this_month", date(2026, 11, 1), date(2026, 11, 29)),
        ("previous_month", date(2026, 10, 1), date(2026, 10, 31)),
    ],
)
def test_calendar_periods(period, first, last):
    params = parse({"period": period})
    assert (params.start_date, params.end_date) == (first, last)


def test_the_previous_month_of_january_is_december():
    params = report_params_parse(
        {"period": "previous_month"}, now=datetime(2027, 1, 1, tzinfo=UTC), default_time_zone="UTC"
    )
    assert (params.start_date, params.end_date) == (date(2026, 12, 1), date(2026, 12, 31))


def test_a_seoul_day_binds_to_the_utc_instants_and_both_partitions_it_spans():
    params = parse({"start_date": "2026-11-29", "end_date": "2026-11-29", "time_zone": "Asia/Seoul"})
    sql = " ".join(report_sql_bind(REPORTS[0]["sql"], BoundFilters(params=params)).split())
    assert "dt BETWEEN '2026-11-28' AND '2026-11-29'" in sql
    assert "ts >= CAST('2026-11-28 15:00:00' AS TIMESTAMP) AND ts < CAST('2026-11-29 15:00:00' AS TIMESTAMP)" in sql
    assert "'Asia/Seoul'" in sql


def test_explicit_dates_model_and_group():
    params = parse(
        {"start_date": "2026-11-01", "end_date": "2026-11-01", "model_id": " amazon.nova-lite-v1:0 ", "group": "Pilots"}
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
        ({"period": "fortnight"}, "Unknown period 'fortnight'"),
        ({"days": 7, "time_zone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'"),
    ],
)
def test_invalid_parameters_are_refused_with_a_reason(raw, message):
    with pytest.raises(ReportParamsError, match=message):
        parse(raw)


def test_a_leap_year_fits_in_the_range():
    params = parse({"start_date": "2028-01-01", "end_date": "2028-12-31"})
    assert (params.end_date - params.start_date).days == 365


def test_binding_quotes_every_value_as_a_literal():
    params = ReportParams(date(2026, 11, 1), date(2026, 11, 2), model_id=None, group="o'brien's")
    sql = " ".join(report_sql_bind(REPORTS[1]["sql"], BoundFilters(params=params)).split())
    assert "group_name = 'o''brien''s'" in sql  # the group is joined, its members are not listed
    assert "( FALSE OR user_sub IN ( SELECT" in sql
    assert "NULL IS NULL" in sql
    assert not re.search(r":[a-z_]", sql)  # no placeholder left: the stored SQL pastes into Athena


def test_binding_rejects_an_unknown_placeholder():
    params = ReportParams(date(2026, 11, 1), date(2026, 11, 2))
    with pytest.raises(ReportParamsError, match=":tenant"):
        report_sql_bind("SELECT 1 FROM requests WHERE x = :tenant", BoundFilters(params=params))


@pytest.mark.parametrize(
    "sql", ["DROP TABLE requests", "INSERT INTO requests SELECT * FROM requests", "DELETE FROM requests"]
)
def test_a_report_sql_that_is_not_a_select_is_refused(sql):
    from analytics.params import ReportParamsError, report_sql_bind

    with pytest.raises(ReportParamsError, match="one SELECT"):
        report_sql_bind(sql, filters=None)
