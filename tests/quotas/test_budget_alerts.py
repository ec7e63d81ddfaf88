"""Budget alerts: a user and the gateway admins hear once when the monthly budget is 80 % and
100 % spent, in their own language; on AWS the alert also goes to the stack's SNS topic."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail

from dataplane.policy import EffectivePolicy, WindowLimits
from dataplane.stores.base import TokenCount, WindowCharge
from dataplane.windows import current_windows
from quotas.budget_alerts import budget_alerts_check
from quotas.models import BudgetAlert

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = 10_000_000  # $10 in micro-USD


def with_budget(store, user) -> None:
    """A $10 monthly budget in the store, at a version no publish from Django outranks (the
    test is about what the store holds, whichever path put it there)."""
    store.policy_put(EffectivePolicy(sub=user.sub, version=2**62, monthly=WindowLimits(total=10**7, cost=BUDGET)))


def spend(store, user, micro_usd: int) -> None:
    """What the user's turns cost, settled in the month window as a chat turn does."""
    policy = store.policy_get(user.sub)
    ten, month = current_windows(datetime.now(UTC), "UTC")
    charges = [WindowCharge(ten, policy.ten_minute), WindowCharge(month, policy.monthly)]
    reservation = store.reserve(sub=user.sub, charges=charges, estimate=TokenCount(input=1, output=1, cost=1))
    store.settle(reservation=reservation, actual=TokenCount(input=1, output=1, cost=micro_usd))


@pytest.fixture
def people(alice, admin_user):
    alice.email, admin_user.email = "alice@example.org", "ada@example.org"
    alice.save()
    admin_user.save()
    return alice, admin_user


def test_each_threshold_alerts_once_to_the_user_and_the_admins(people, gateway_store):
    alice, _ = people
    with_budget(gateway_store, alice)
    spend(gateway_store, alice, 7_000_000)  # $7 of $10: below 80 %
    assert budget_alerts_check() == []

    spend(gateway_store, alice, 1_500_000)  # $8.50: 85 %
    [alert] = budget_alerts_check()
    assert (alert.user, alert.threshold, alert.cost_usd) == (alice, 80, Decimal("8.5"))
    assert sorted(message.to[0] for message in mail.outbox) == ["ada@example.org", "alice@example.org"]
    to_alice = next(message for message in mail.outbox if message.to == ["alice@example.org"])
    assert to_alice.subject == "80% of your monthly AI gateway budget is spent"
    assert "$8.50 of your $10.00 budget" in to_alice.body
    to_admin = next(message for message in mail.outbox if message.to == ["ada@example.org"])
    assert "alice has spent 80%" in to_admin.subject

    assert budget_alerts_check() == []  # checked again: nothing new
    assert len(mail.outbox) == 2

    spend(gateway_store, alice, 2_000_000)  # $10.50: spent
    [spent] = budget_alerts_check()
    assert spent.threshold == 100
    assert "budget is spent" in mail.outbox[-2].subject or "budget is spent" in mail.outbox[-1].subject
    assert BudgetAlert.objects.filter(user=alice).count() == 2


def test_a_korean_user_is_told_in_korean(people, gateway_store):
    alice, _ = people
    alice.language = "ko"
    alice.save()
    with_budget(gateway_store, alice)
    spend(gateway_store, alice, 9_000_000)
    budget_alerts_check()
    to_alice = next(message for message in mail.outbox if message.to == ["alice@example.org"])
    assert "예산" in to_alice.subject


def test_users_without_a_budget_are_never_alerted(people, gateway_store):
    alice, _ = people
    gateway_store.policy_put(EffectivePolicy(sub=alice.sub, version=2**62, monthly=WindowLimits(total=10**7)))
    spend(gateway_store, alice, 50_000_000)
    assert budget_alerts_check() == []
    assert mail.outbox == []


@pytest.mark.django_db(serialized_rollback=True)  # the schedule is data the migration wrote
def test_the_alert_check_is_scheduled_every_minute():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="quotas.budget_alerts_check")
    assert (task.interval.every, task.interval.period) == (1, "minutes")


def test_admins_read_alerts_but_cannot_write_them(people, gateway_store, client):
    from django.urls import reverse

    alice, admin_user = people
    with_budget(gateway_store, alice)
    spend(gateway_store, alice, 9_500_000)
    [alert] = budget_alerts_check()
    client.force_login(admin_user)
    listing = client.get(reverse("admin:quotas_budgetalert_changelist"))
    assert listing.status_code == 200
    assert "alice" in listing.content.decode()
    assert client.get(reverse("admin:quotas_budgetalert_add")).status_code == 403
    client.post(reverse("admin:quotas_budgetalert_change", args=[alert.pk]), {"threshold": 1})
    alert.refresh_from_db()
    assert alert.threshold == 80
