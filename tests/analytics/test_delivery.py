"""Scheduled runs are mailed once to their schedule's recipients, with the CSV and a link."""
from __future__ import annotations

import pytest
from django.core import mail

from analytics import services
from analytics.delivery import InvalidRecipientsError, recipients_parse, report_run_deliver
from analytics.models import ReportDefinition, ReportRun, RunStatus
from analytics.tasks import report_run_task

pytestmark = pytest.mark.django_db


def schedule_with(recipients: str, slug: str = "errors-by-type"):
    schedule = ReportDefinition.objects.get(slug=slug).schedule
    schedule.recipients = recipients
    return services.report_schedule_save(schedule=schedule)


def test_a_scheduled_run_is_mailed_with_its_csv_and_link(settings, lake_records, django_capture_on_commit_callbacks):
    settings.GATEWAY_BASE_URL = "https://gateway.example.com/"
    schedule_with("ana@example.com; lead@example.com,\nana@example.com")
    run = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="errors-by-type"), trigger="schedule",
        params={"start_date": "2026-11-20", "end_date": "2026-11-24", "time_zone": "Asia/Seoul"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert report_run_task(run.pk) == RunStatus.SUCCEEDED
    (message,) = mail.outbox
    run.refresh_from_db()
    assert message.to == ["ana@example.com", "lead@example.com"]
    assert message.subject == "Errors by type: 2026-11-20 → 2026-11-24 (Asia/Seoul)"
    assert f"https://gateway.example.com/reports/runs/{run.pk}/" in message.body
    ((name, content, kind),) = message.attachments
    assert (name, kind) == (f"errors-by-type-run-{run.pk}.csv", "text/csv")
    lines = content.strip().splitlines()
    assert lines[0] == "error_type,errors"
    assert len(lines) == run.row_count + 1
    # A redelivered task (acks_late) finds the run delivered and mails nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert report_run_deliver(run_id=run.pk) is False
    assert len(mail.outbox) == 1
    assert run.delivered_at is not None


def test_a_failed_scheduled_run_mails_its_error_without_an_attachment(django_capture_on_commit_callbacks, lake_dir):
    schedule_with("ana@example.com")
    run = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="errors-by-type"), trigger="schedule",
        params={"start_date": "2026-11-20", "end_date": "2026-11-24", "group": "Deleted since"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert report_run_task(run.pk) == RunStatus.FAILED
    (message,) = mail.outbox
    assert message.subject.startswith("Errors by type failed")
    assert "no longer exists" in message.body
    assert message.attachments == []


def test_manual_runs_and_schedules_without_recipients_send_nothing(lake_records, django_capture_on_commit_callbacks):
    schedule_with("ana@example.com")
    manual = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="errors-by-type"),
        params={"start_date": "2026-11-20", "end_date": "2026-11-24"},
    )
    silent = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="top-users-by-tokens"), trigger="schedule",
        params={"start_date": "2026-11-20", "end_date": "2026-11-24"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        report_run_task(manual.pk)
        report_run_task(silent.pk)
    assert mail.outbox == []


def test_recipients_are_validated_with_the_bad_address_named():
    assert recipients_parse(" a@example.com ,b@example.com\n") == ["a@example.com", "b@example.com"]
    with pytest.raises(InvalidRecipientsError, match="'not-an-address' is not an e-mail address"):
        recipients_parse("a@example.com, not-an-address")
    with pytest.raises(InvalidRecipientsError):
        schedule_with("nobody")


def test_each_recipient_gets_the_mail_in_the_language_they_chose(lake_records, django_capture_on_commit_callbacks):
    from tests.factories import UserFactory

    UserFactory(username="min", email="min@example.com", language="ko")
    schedule_with("min@example.com, lead@example.com")
    run = ReportRun.objects.create(
        definition=ReportDefinition.objects.get(slug="errors-by-type"), trigger="schedule",
        params={"start_date": "2026-11-20", "end_date": "2026-11-24", "time_zone": "Asia/Seoul"},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert report_run_task(run.pk) == RunStatus.SUCCEEDED
    by_recipient = {tuple(message.to): message for message in mail.outbox}
    korean, english = by_recipient[("min@example.com",)], by_recipient[("lead@example.com",)]
    run.refresh_from_db()
    assert korean.subject == "유형별 오류: 2026-11-20 → 2026-11-24 (Asia/Seoul)"
    period = "2026-11-20 → 2026-11-24 (Asia/Seoul)"
    assert korean.body.startswith(f"{period} 기간의 {run.row_count}행을 CSV로 첨부했습니다.")
    assert "차트와 표: " in korean.body
    assert english.subject == "Errors by type: 2026-11-20 → 2026-11-24 (Asia/Seoul)"
    assert len(korean.attachments) == len(english.attachments) == 1
