"""E-mail delivery of scheduled report runs: the CSV attached and a link to the run page.

A scheduled run that ends (succeeded or failed) is mailed once to its schedule's recipients.
"Once" survives a redelivered task (`acks_late`): the run is locked and marked delivered in the
same transaction that decides to send, and the mail goes out after that commit.
"""
from __future__ import annotations

import csv
import io
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from analytics.models import ReportRun, ReportSchedule, RunStatus

logger = logging.getLogger(__name__)
MAX_RECIPIENTS = 50


class InvalidRecipientsError(ValueError):
    """A schedule's recipient list is not a list of e-mail addresses; the message names the bad one."""


def recipients_parse(text: str) -> list[str]:
    """Addresses separated by commas, semicolons or new lines; duplicates dropped, order kept."""
    addresses = [part.strip() for part in text.replace(";", ",").replace("\n", ",").split(",") if part.strip()]
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidRecipientsError(f"{address!r} is not an e-mail address.") from None
    unique = list(dict.fromkeys(addresses))
    if len(unique) > MAX_RECIPIENTS:
        raise InvalidRecipientsError(f"A schedule may mail at most {MAX_RECIPIENTS} recipients.")
    return unique


def run_csv_text(run: ReportRun) -> str:
    """The run's stored rows as CSV (what the download gives, and what the e-mail attaches)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(run.columns)
    for row in run.rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: neutralise it.
        writer.writerow([f"'{cell}" if isinstance(cell, str) and cell[:1] in "=+-@" else cell for cell in row])
    return out.getvalue()


def report_run_deliver(*, run_id: int) -> bool:
    """Mail a finished scheduled run to its schedule's recipients, once; return whether it was sent."""
    with transaction.atomic():
        run = ReportRun.objects.select_for_update().select_related("definition").get(pk=run_id)
        schedule = ReportSchedule.objects.filter(definition=run.definition).first()
        if run.trigger != "schedule" or not run.is_finished or run.delivered_at is not None or schedule is None:
            return False
        recipients = recipients_parse(schedule.recipients)
        if not recipients:
            return False
        run.delivered_at = timezone.now()
        run.save(update_fields=["delivered_at"])
        message = _message(run, recipients)
        transaction.on_commit(lambda: message.send(fail_silently=False))
    logger.info("report run %s mailed to %d recipient(s)", run_id, len(recipients))
    return True


def _message(run: ReportRun, recipients: list[str]) -> EmailMessage:
    params = run.params
    period = f"{params.get('start_date')} → {params.get('end_date')} ({params.get('time_zone') or 'UTC'})"
    link = settings.GATEWAY_BASE_URL.rstrip("/") + run.get_absolute_url()
    if run.status == RunStatus.SUCCEEDED:
        subject = f"{run.definition.title}: {period}"
        body = f"{run.row_count} row(s) for {period}, attached as CSV.\n\nChart and table: {link}\n"
        if run.rows_truncated:
            body += f"Only the first {len(run.rows)} rows are stored and attached.\n"
    else:
        subject = f"{run.definition.title} failed: {period}"
        body = f"The scheduled run failed:\n\n{run.error}\n\nDetails: {link}\n"
    message = EmailMessage(subject=subject, body=body, to=recipients)
    if run.status == RunStatus.SUCCEEDED:
        message.attach(f"{run.definition.slug}-run-{run.pk}.csv", run_csv_text(run), "text/csv")
    return message
