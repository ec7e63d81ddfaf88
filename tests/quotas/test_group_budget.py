"""A group's pooled monthly budget: set on the group's admin page, carried in every member's
policy document, republished when it or the membership changes, alerted at 80 % and 100 %."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from dataplane.policy import PooledBudget, pool_owner
from dataplane.stores.base import TokenCount, pooled_charges
from dataplane.windows import current_windows
from quotas.budget_alerts import budget_alerts_check
from quotas.models import BudgetAlert, GroupBudget


def group_form(name: str, *, budget: str | None, existing: GroupBudget | None = None) -> dict[str, str]:
    form = {
        "name": name,
        "quota_policy_assignment-TOTAL_FORMS": "0", "quota_policy_assignment-INITIAL_FORMS": "0",
        "model_access-TOTAL_FORMS": "0", "model_access-INITIAL_FORMS": "0",
        "pooled_budget-TOTAL_FORMS": "0" if budget is None else "1",
        "pooled_budget-INITIAL_FORMS": "0" if existing is None else "1",
    }
    if budget is not None:
        form["pooled_budget-0-monthly_budget_usd"] = budget
    if existing is not None:
        form |= {"pooled_budget-0-id": str(existing.pk), "pooled_budget-0-group": str(existing.group_id)}
    return form


def pool_spend(store, group: Group, micro_usd: int) -> None:
    """What the members' turns cost, settled in the pool as a chat turn does."""
    _, month = current_windows(datetime.now(UTC), "UTC")
    charges = pooled_charges(month, (GroupBudget.objects.get(group=group).pool,))
    reservation = store.reserve(sub="someone", charges=charges, estimate=TokenCount(input=1, output=1, cost=1))
    store.settle(reservation=reservation, actual=TokenCount(input=1, output=1, cost=micro_usd))


@pytest.mark.django_db
def test_an_admin_sets_a_pooled_budget_and_every_member_gets_it(
    client, superuser, alice, bob, default_policy, gateway_store, drain
):
    research = Group.objects.create(name="Research")
    with drain():
        alice.groups.add(research)
    client.force_login(superuser)
    with drain():
        response = client.post(f"/admin/auth/group/{research.pk}/change/", group_form("Research", budget="50"))
    assert response.status_code == 302, response.content.decode()[:3000]

    expected = PooledBudget(key=pool_owner(research.pk), name="Research", cost=50_000_000)
    assert gateway_store.policy_get(alice.sub).pools == (expected,)
    with drain():
        bob.groups.add(research)  # a new member is charged to the pool too
    assert gateway_store.policy_get(bob.sub).pools == (expected,)

    budget = GroupBudget.objects.get(group=research)
    with drain():
        client.post(f"/admin/auth/group/{research.pk}/change/", group_form("Research", budget="75", existing=budget))
    assert gateway_store.policy_get(alice.sub).pools[0].cost == 75_000_000
    with drain():
        bob.groups.remove(research)
    assert gateway_store.policy_get(bob.sub).pools == ()


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["0", "-5"])
def test_a_pooled_budget_must_be_positive(client, superuser, default_policy, amount):
    client.force_login(superuser)
    response = client.post("/admin/auth/group/add/", group_form("Research", budget=amount))
    assert response.status_code == 200
    assert "A pooled budget must be more than zero. To have no pooled budget, delete it." in response.content.decode()
    assert not Group.objects.filter(name="Research").exists()


@pytest.mark.django_db
def test_the_group_page_shows_what_the_members_spent_this_month(client, superuser, default_policy, gateway_store):
    research = Group.objects.create(name="Research")
    GroupBudget.objects.create(group=research, monthly_budget_usd=Decimal("40"))
    pool_spend(gateway_store, research, 10_000_000)
    client.force_login(superuser)
    page = client.get(f"/admin/auth/group/{research.pk}/change/").content.decode()
    assert "$10.00 of $40.00 (25%)" in page


@pytest.mark.django_db(transaction=True)
def test_a_pooled_budget_alerts_the_admins_once_per_threshold(admin_user, alice, gateway_store):
    admin_user.email, alice.email = "ada@example.org", "alice@example.org"
    admin_user.save()
    alice.save()
    research = Group.objects.create(name="Research")
    alice.groups.add(research)
    GroupBudget.objects.create(group=research, monthly_budget_usd=Decimal("10"))

    pool_spend(gateway_store, research, 8_500_000)
    [alert] = budget_alerts_check()
    assert (alert.group, alert.user, alert.threshold, alert.cost_usd) == (research, None, 80, Decimal("8.5"))
    [message] = mail.outbox  # the admins; the members see the refusal in the chat
    assert message.to == ["ada@example.org"]
    assert message.subject == "Budget alert: the Research group has spent 80% of its pooled monthly budget"
    assert "$8.50 of the group's pooled $10.00 budget" in message.body
    assert budget_alerts_check() == []

    pool_spend(gateway_store, research, 2_000_000)
    [spent] = budget_alerts_check()
    assert spent.threshold == 100
    assert BudgetAlert.objects.filter(group=research).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_korean_admin_reads_the_pooled_budget_alert_in_korean(admin_user, gateway_store):
    admin_user.email, admin_user.language = "ada@example.org", "ko"
    admin_user.save()
    research = Group.objects.create(name="Research")
    GroupBudget.objects.create(group=research, monthly_budget_usd=Decimal("10"))
    pool_spend(gateway_store, research, 9_000_000)
    budget_alerts_check()
    [message] = mail.outbox
    assert message.subject == "예산 알림: Research 그룹이 이번 달 공동 예산의 80%를 썼습니다"
