"""Budget alerts: tell a user and the gateway admins when the user's monthly cost budget is
80 % and 100 % spent, once per threshold per month; and the admins when a group's pooled
monthly budget is.

The check runs in the control plane every minute (Celery beat) and reads the month's usage
from the store, so it sees what both doors spent (the chat page and `/v1` through Django, and
the Lambda behind AppSync). Alerts go by e-mail, in each reader's language, and to the SNS
topic the stack creates when `GATEWAY_BUDGET_ALERTS_TOPIC_ARN` is set.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.roles import GATEWAY_ADMINS
from dataplane import aws
from dataplane.stores.base import micro_usd_to_usd
from dataplane.windows import current_windows
from quotas import store as store_port
from quotas.models import BudgetAlert, GroupBudget

logger = logging.getLogger(__name__)

WARNING_PERCENT, SPENT_PERCENT = 80, 100
THRESHOLDS = (WARNING_PERCENT, SPENT_PERCENT)  # percent of the monthly budget


def budget_alerts_check(*, now: datetime | None = None) -> list[BudgetAlert]:
    """Record (and, after commit, send) the alerts of every threshold crossed this month."""
    now = now or timezone.now()
    _, month = current_windows(now, settings.GATEWAY_MONTH_TIMEZONE)
    store = store_port.store_get()
    spent = {owner: usage.cost for owner, usage in store.usage_list(window_key=month.key).items() if usage.cost > 0}
    if not spent:
        return []
    month_label = month.key.partition("#")[2]
    alerts = []
    budgets = {
        policy.sub: policy.monthly.cost
        for policy in store.policy_list()
        if policy.sub in spent and policy.monthly.cost
    }
    for user in get_user_model().objects.filter(sub__in=budgets):
        alerts += _alerts(owner={"user": user}, month=month_label, cost=spent[user.sub], budget=budgets[user.sub])
    for group_budget in GroupBudget.objects.select_related("group"):
        pool = group_budget.pool
        if pool.key in spent:
            alerts += _alerts(owner={"group": group_budget.group}, month=month_label, cost=spent[pool.key],
                              budget=pool.cost)
    return alerts


def _alerts(*, owner: dict[str, Any], month: str, cost: int, budget: int) -> list[BudgetAlert]:
    """The new alerts of `owner` (a user or a group) for the thresholds `cost` crossed."""
    alerts = []
    for threshold in THRESHOLDS:
        if cost * 100 >= budget * threshold:
            alert = _record(owner=owner, month=month, threshold=threshold, cost=cost, budget=budget)
            if alert is not None:
                alerts.append(alert)
    return alerts


def _record(*, owner: dict[str, Any], month: str, threshold: int, cost: int, budget: int) -> BudgetAlert | None:
    """The new alert, or None when this threshold was already alerted this month."""
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                **owner, month=month, threshold=threshold,
                cost_usd=Decimal(str(micro_usd_to_usd(cost))), budget_usd=Decimal(str(micro_usd_to_usd(budget))),
            )
    except IntegrityError:  # alerted before (or by a concurrent check)
        return None
    transaction.on_commit(lambda: budget_alert_notify(alert=alert))
    return alert


def budget_alert_notify(*, alert: BudgetAlert) -> None:
    """E-mail the user (of a user's budget) and the admins, each in their language; publish to
    SNS where set up."""
    user = alert.user
    if user is not None and user.email:
        with translation.override(user.language or settings.LANGUAGE_CODE):
            subject, body = _user_message(alert)
            send_mail(subject, body, None, [user.email], fail_silently=True)
    for admin in _admins():
        with translation.override(admin.language or settings.LANGUAGE_CODE):
            subject, body = _admin_message(alert)
            send_mail(subject, body, None, [admin.email], fail_silently=True)
    topic = settings.GATEWAY_BUDGET_ALERTS_TOPIC_ARN
    if topic:
        _publish(topic, alert)


def _figures(alert: BudgetAlert) -> dict[str, object]:
    return {
        "percent": alert.threshold, "spent": f"${alert.cost_usd:,.2f}", "budget": f"${alert.budget_usd:,.2f}",
        "month": alert.month, "user": alert.owner_name, "group": alert.owner_name,
    }


def _user_message(alert: BudgetAlert) -> tuple[str, str]:
    figures = _figures(alert)
    if alert.threshold >= SPENT_PERCENT:
        subject = _("Your monthly AI gateway budget is spent")
        body = _(
            "You have spent %(spent)s of your %(budget)s budget for %(month)s. New requests are refused "
            "until the month ends, unless a gateway admin raises your budget."
        ) % figures
    else:
        subject = _("%(percent)s%% of your monthly AI gateway budget is spent") % figures
        body = _(
            "You have spent %(spent)s of your %(budget)s budget for %(month)s (%(percent)s%%). When it is "
            "spent, new requests are refused until the month ends."
        ) % figures
    return subject, body


def _admin_message(alert: BudgetAlert) -> tuple[str, str]:
    figures = _figures(alert)
    if alert.group_id is not None:
        subject = _("Budget alert: the %(group)s group has spent %(percent)s%% of its pooled monthly budget") % figures
        body = _(
            "The members of %(group)s have spent %(spent)s of the group's pooled %(budget)s budget for %(month)s "
            "(%(percent)s%%). When it is spent, their requests are refused until the month ends. The pooled budget "
            "is on the group's page in the gateway admin."
        ) % figures
        return subject, body
    subject = _("Budget alert: %(user)s has spent %(percent)s%% of their monthly budget") % figures
    body = _(
        "%(user)s has spent %(spent)s of a %(budget)s budget for %(month)s (%(percent)s%%). Their policy "
        "and budget are in the gateway admin."
    ) % figures
    return subject, body


def _admins():
    return (
        get_user_model()
        .objects.filter(Q(groups__name=GATEWAY_ADMINS) | Q(is_superuser=True), is_active=True)
        .exclude(email="")
        .distinct()
    )


def _publish(topic: str, alert: BudgetAlert) -> None:
    owner: dict[str, object] = (
        {"user": alert.user.get_username(), "sub": alert.user.sub}
        if alert.user is not None
        else {"group": alert.owner_name, "groupId": alert.group_id}
    )
    message = {
        "type": "BudgetAlert", **owner, "month": alert.month,
        "thresholdPercent": alert.threshold, "spentUsd": float(alert.cost_usd), "budgetUsd": float(alert.budget_usd),
    }
    client = aws.client("sns", aws.ClientSettings(region=settings.AWS_REGION))
    try:
        client.publish(
            TopicArn=topic, Subject=f"AI gateway budget alert: {alert.threshold}%", Message=json.dumps(message)
        )
    except (ClientError, BotoCoreError):
        # The e-mails went out and the alert is recorded: a failing topic is for operators.
        logger.exception("budget alert for %s could not be published to %s", alert.owner_name, topic)


def budget_alerts_schedule_ensure(*, interval_model, periodic_task_model) -> None:
    """Run the check every minute (used by the migration that introduced alerts)."""
    every_minute, _ = interval_model.objects.get_or_create(every=1, period="minutes")
    periodic_task_model.objects.update_or_create(
        name="Send budget alerts", defaults={"task": "quotas.budget_alerts_check", "interval": every_minute}
    )
