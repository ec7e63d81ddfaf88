"""No list page of the gateway runs a query per row: 20 rows cost what 2 rows cost.

Each page is read with 2 rows of its kind (plus what they hang on), then with 20, and the
second read may run no more queries than the first.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import ReportDefinition, ReportRun
from quotas.models import (
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    OutboxStatus,
    PolicyOutbox,
    PreparedOutbox,
    PreparedResponse,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)
from tests.factories import user_create

pytestmark = pytest.mark.django_db


def _model(n: int) -> ModelCatalogueEntry:
    return ModelCatalogueEntry.objects.create(
        provider="demo", model_id=f"demo.list-{n}", display_name=f"List model {n}"
    )


def add_models(n: int) -> None:
    _model(n)


def add_policies(n: int) -> None:
    policy = QuotaPolicy.objects.create(name=f"Policy {n}", ten_minute_total=1_000 + n, monthly_total=100_000)
    group = Group.objects.create(name=f"Policy group {n}")
    GroupPolicy.objects.create(group=group, policy=policy)
    user = user_create(username=f"override{n}")
    UserPolicyOverride.objects.create(user=user, policy=policy)
    PolicyOutbox.objects.create(sub=user.sub, user=user, policy=policy, version=n, status=OutboxStatus.DONE)
    PolicyOutbox.objects.create(sub=user.sub, user=user, policy=policy, version=n + 1, status=OutboxStatus.PENDING)


def add_groups(n: int) -> None:
    group = Group.objects.create(name=f"Team {n}")
    GroupPolicy.objects.create(group=group, policy=QuotaPolicy.objects.get(is_default=True))
    GroupModelAccess.objects.create(group=group, model=_model(n))
    for member in range(2):
        group.user_set.add(user_create(username=f"member{n}-{member}"))


def add_group_policies(n: int) -> None:
    GroupPolicy.objects.create(
        group=Group.objects.create(name=f"Assigned {n}"), policy=QuotaPolicy.objects.get(is_default=True)
    )


def add_overrides(n: int) -> None:
    UserPolicyOverride.objects.create(
        user=user_create(username=f"over{n}"), policy=QuotaPolicy.objects.get(is_default=True)
    )


def add_users(n: int) -> None:
    user = user_create(username=f"person{n}", groups=[f"Crew {n % 3}"])
    UserModelAccess.objects.create(user=user, model=_model(n))
    if n % 2:
        UserPolicyOverride.objects.create(user=user, policy=QuotaPolicy.objects.get(is_default=True))


def add_prepared(n: int) -> None:
    prepared = PreparedResponse.objects.create(
        question=f"What is list question {n}?", answer="An answer.", model=_model(n)
    )
    PreparedOutbox.objects.create(action="put", question_key=f"k{n}", prepared=prepared, status=OutboxStatus.DONE)


def add_policy_outbox(n: int) -> None:
    user = user_create(username=f"outbox{n}")
    PolicyOutbox.objects.create(sub=user.sub, user=user, policy=QuotaPolicy.objects.get(is_default=True), version=n)


def add_prepared_outbox(n: int) -> None:
    PreparedOutbox.objects.create(action="delete", question_key=f"q{n}", status=OutboxStatus.PENDING)


def add_runs(n: int) -> None:
    definition = ReportDefinition.objects.order_by("pk")[n % 3]
    ReportRun.objects.create(
        definition=definition,
        params={"start_date": "2026-11-01", "end_date": "2026-11-02"},
        requested_by=user_create(username=f"runner{n}"),
        rows=[[n]] * 100,
        columns=["n"],
    )


def add_definitions(n: int) -> None:
    ReportDefinition.objects.create(
        slug=f"list-{n}", title=f"List report {n}", sql="SELECT 1", x_column="a", y_column="b"
    )


LIST_PAGES: dict[str, tuple[str, Callable[[int], None]]] = {
    "catalogue": ("/admin/quotas/modelcatalogueentry/", add_models),
    "policies": ("/admin/quotas/quotapolicy/", add_policies),
    "group policies": ("/admin/quotas/grouppolicy/", add_group_policies),
    "user overrides": ("/admin/quotas/userpolicyoverride/", add_overrides),
    "groups": ("/admin/auth/group/", add_groups),
    "users": ("/admin/accounts/user/", add_users),
    "prepared answers": ("/admin/quotas/preparedresponse/", add_prepared),
    "policy outbox": ("/admin/quotas/policyoutbox/", add_policy_outbox),
    "prepared outbox": ("/admin/quotas/preparedoutbox/", add_prepared_outbox),
    "report runs": ("/admin/analytics/reportrun/", add_runs),
    "report definitions": ("/admin/analytics/reportdefinition/", add_definitions),
    "report schedules": ("/admin/analytics/reportschedule/", lambda n: None),  # one per built-in report
}


@pytest.mark.parametrize("page", LIST_PAGES)
def test_a_list_page_runs_no_query_per_row(page, client, superuser, default_policy, django_assert_max_num_queries):
    url, add_row = LIST_PAGES[page]
    client.force_login(superuser)
    for number in range(2):
        add_row(number)
    with CaptureQueriesContext(connection) as two_rows:
        assert client.get(url).status_code == 200
    for number in range(2, 20):
        add_row(number)
    with django_assert_max_num_queries(len(two_rows)):
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 10  # the rows are really listed


def test_the_check_catches_a_query_per_row(client, superuser, default_policy, monkeypatch):
    """Without the list annotations, the policy list's count grows with its rows."""
    from quotas.admin import QuotaPolicyAdmin

    def assigned_to_by_row(self, policy):
        return f"{policy.group_assignments.count()} group(s)"

    monkeypatch.setattr(QuotaPolicyAdmin, "assigned_to", assigned_to_by_row)
    client.force_login(superuser)
    add_policies(0)
    with CaptureQueriesContext(connection) as few:
        client.get("/admin/quotas/quotapolicy/")
    for number in range(1, 20):
        add_policies(number)
    with CaptureQueriesContext(connection) as many:
        client.get("/admin/quotas/quotapolicy/")
    assert len(many) > len(few)
