"""The "who can use which model" admin page: users and groups by models, each cell naming why."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quotas.access_matrix import access_matrix_build
from quotas.models import (
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)
from quotas.selectors import allowed_models, policy_resolve
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/admin/quotas/model-access/"


@pytest.fixture
def catalogue(default_policy):
    models = {
        "open": ModelCatalogueEntry.objects.create(
            provider="demo", model_id="demo.open", display_name="Open model", available_to_all=True
        ),
        "research": ModelCatalogueEntry.objects.create(
            provider="demo", model_id="demo.research", display_name="Research model"
        ),
        "direct": ModelCatalogueEntry.objects.create(
            provider="demo", model_id="demo.direct", display_name="Direct model"
        ),
        "off": ModelCatalogueEntry.objects.create(
            provider="demo", model_id="demo.off", display_name="Disabled model", enabled=False
        ),
    }
    research = Group.objects.create(name="Research")
    GroupModelAccess.objects.create(group=research, model=models["research"])
    generous = QuotaPolicy.objects.create(name="Generous", ten_minute_total=90_000, monthly_total=9_000_000)
    GroupPolicy.objects.create(group=research, policy=generous)
    return models


def cell_texts(html: str, row: str) -> list[str]:
    match = re.search(rf'<tr data-row="{re.escape(row)}">(.*?)</tr>', html, re.S)
    assert match, f"no row {row}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


def test_each_cell_names_the_grant_and_each_row_its_policy(client, admin_user, alice, bob, catalogue):
    alice.groups.add(Group.objects.get(name="Research"))
    UserModelAccess.objects.create(user=alice, model=catalogue["direct"])
    carol = UserFactory(username="carol", is_active=False)
    UserModelAccess.objects.create(user=carol, model=catalogue["direct"])
    client.force_login(admin_user)

    html = client.get(URL).content.decode()

    # Columns: enabled models only, by display name (Direct, Open, Research).
    assert re.findall(r'<th scope="col" data-model="([^"]+)"', html) == ["demo.direct", "demo.open", "demo.research"]
    assert cell_texts(html, "user:alice") == ["Generous", "direct grant", "open to all", "group: Research"]
    assert cell_texts(html, "user:bob") == ["Standard", "—", "open to all", "—"]
    assert cell_texts(html, "user:carol") == ["Standard account disabled", "—", "—", "—"]
    assert cell_texts(html, "group:Research") == ["Generous", "—", "open to all", "group: Research"]


def test_the_matrix_agrees_with_what_the_gateway_enforces(alice, bob, admin_user, catalogue):
    """The page resolves in bulk; the publisher resolves one user at a time. Same answers."""
    research = Group.objects.get(name="Research")
    alice.groups.add(research)
    bob.groups.add(research)
    UserPolicyOverride.objects.create(user=bob, policy=QuotaPolicy.objects.get(name="Standard"))
    UserModelAccess.objects.create(user=bob, model=catalogue["direct"])
    users = [alice, bob, admin_user]
    matrix = access_matrix_build(users=users, groups=Group.objects.all())
    for user, row in zip(users, matrix.user_rows, strict=True):
        assert row.policy == policy_resolve(user=user)
        allowed = {entry.model_id for entry, grants in zip(matrix.models, row.cells, strict=True) if grants}
        assert allowed == set(allowed_models(user=user).values_list("model_id", flat=True))


def test_filters_by_user_group_and_model(client, admin_user, alice, bob, catalogue):
    research = Group.objects.get(name="Research")
    alice.groups.add(research)
    client.force_login(admin_user)

    by_group = client.get(URL, {"group": research.pk}).content.decode()
    by_model = client.get(URL, {"model": catalogue["research"].pk}).content.decode()
    by_user = client.get(URL, {"q": "bo"}).content.decode()

    assert re.findall(r'data-row="([^"]+)"', by_group) == ["group:Research", "user:alice"]
    assert re.findall(r'data-model="([^"]+)"', by_model) == ["demo.research"]
    assert re.findall(r'data-row="([^"]+)"', by_model) == ["group:Research", "user:alice"]
    assert re.findall(r'data-row="([^"]+)"', by_user) == ["user:bob"]


def test_the_page_runs_the_same_queries_for_2_or_20_users(client, admin_user, catalogue):
    client.force_login(admin_user)
    for number in range(2):
        UserFactory(username=f"few{number}", groups=["Research"])
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL).status_code == 200
    for number in range(18):
        user = UserFactory(username=f"many{number}", groups=["Research"])
        UserModelAccess.objects.create(user=user, model=catalogue["direct"])
        Group.objects.create(name=f"Team {number}").user_set.add(user)
    with CaptureQueriesContext(connection) as many:
        html = client.get(URL).content.decode()
    assert html.count('data-row="user:') == 21  # ada, 2 + 18
    assert len(many) == len(few), [query["sql"] for query in many.captured_queries]


def test_analysts_may_look_plain_users_may_not(client, analyst_user, alice, catalogue):
    client.force_login(analyst_user)
    assert client.get(URL).status_code == 200
    client.force_login(alice)
    assert client.get(URL).status_code == 302  # the admin's sign-in page: not staff


def test_linked_from_the_index_and_the_catalogue(client, admin_user, catalogue):
    client.force_login(admin_user)
    assert f'href="{URL}"' in client.get("/admin/").content.decode()
    assert f'href="{URL}"' in client.get("/admin/quotas/modelcatalogueentry/").content.decode()
    change = client.get(f"/admin/quotas/modelcatalogueentry/{catalogue['open'].pk}/change/").content.decode()
    assert f'href="{URL}?model={catalogue["open"].pk}"' in change
