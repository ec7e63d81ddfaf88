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
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

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
            text = gettext("%(address)s is not an e-mail address.") % {"address": repr(address)}
            raise InvalidRecipientsError(text) from None
    unique = list(dict.fromkeys(addresses))
    if len(unique) > MAX_RECIPIENTS:
        text = gettext("A schedule may mail at most %(count)s recipients.")
        raise InvalidRecipientsError(text % {"count": MAX_RECIPIENTS})
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
        mails = [_message(run, group, language) for language, group in recipients_by_language(recipients).items()]
        transaction.on_commit(lambda: [mail.send(fail_silently=False) for mail in mails])
    logger.info("report run %s mailed to %d recipient(s)", run_id, len(recipients))
    return True


def recipients_by_language(recipients: list[str]) -> dict[str, list[str]]:
    """Each address in the language its user chose (the switch), else the site's default."""
    from django.contrib.auth import get_user_model

    chosen = {
        email.lower(): language
        for email, language in get_user_model()
        .objects.filter(email__in=recipients)
        .exclude(language="")
        .values_list("email", "language")
    }
    groups: dict[str, list[str]] = {}
    for address in recipients:
        groups.setdefault(chosen.get(address.lower(), settings.LANGUAGE_CODE), []).append(address)
    return groups


def _message(run: ReportRun, recipients: list[str], language: str) -> EmailMessage:
    with translation.override(language):
        return _message_in_active_language(run, recipients)


def _message_in_active_language(run: ReportRun, recipients: list[str]) -> EmailMessage:
    params = run.params
    period = f"{params.get('start_date')} → {params.get('end_date')} ({params.get('time_zone') or 'UTC'})"
    link = settings.GATEWAY_BASE_URL.rstrip("/") + run.get_absolute_url()
    title = gettext(run.definition.title)  # a built-in report's title is in the catalogue
    if run.status == RunStatus.SUCCEEDED:
        subject = f"{title}: {period}"
        body = ngettext(
            "%(count)s row for %(period)s, attached as CSV.",
            "%(count)s rows for %(period)s, attached as CSV.",
            run.row_count,
        ) % {"count": run.row_count, "period": period}
        body += "\n\n" + gettext("Chart and table: %(link)s") % {"link": link} + "\n"
        if run.rows_truncated:
            body += gettext("Only the first %(count)s rows are stored and attached.") % {"count": len(run.rows)} + "\n"
    else:
        subject = gettext("%(title)s failed: %(period)s") % {"title": title, "period": period}
        details = gettext("Details: %(link)s") % {"link": link}
        body = gettext("The scheduled run failed:") + f"\n\n{run.error}\n\n{details}\n"
    message = EmailMessage(subject=subject, body=body, to=recipients)
    if run.status == RunStatus.SUCCEEDED:
        message.attach(f"{run.definition.slug}-run-{run.pk}.csv", run_csv_text(run), "text/csv")
    return message
