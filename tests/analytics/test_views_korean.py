"""The reports pages' errors in the analyst's language: a bad period is explained in Korean."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.models import ReportRun
from analytics.params import ReportParamsError, report_params_parse

pytestmark = pytest.mark.django_db
KOREAN = {"HTTP_ACCEPT_LANGUAGE": "ko"}


def test_a_reversed_period_is_refused_in_korean(client, analyst_user):
    client.force_login(analyst_user)
    response = client.post(
        "/reports/errors-by-type/run/", {"start_date": "2026-11-24", "end_date": "2026-11-20"}, **KOREAN
    )
    assert response.status_code == 400
    assert "시작일은 종료일과 같거나 그 전이어야 합니다." in response.content.decode()
    assert not ReportRun.objects.exists()


def test_the_error_stays_english_for_logs_and_translates_its_field_name():
    from django.utils import translation

    with pytest.raises(ReportParamsError) as caught:
        report_params_parse({"end_date": "2026-11-20"}, now=datetime(2026, 11, 25, tzinfo=UTC), default_time_zone="UTC")
    assert str(caught.value) == "The start date is required."
    with translation.override("ko"):
        assert caught.value.localized() == "시작일을(를) 입력하세요."
