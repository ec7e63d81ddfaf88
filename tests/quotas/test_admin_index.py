"""The admin index a gateway admin sees: the gateway's sections first, one "Accounts"."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def section_names(html: str) -> list[str]:
    return re.findall(r'<caption>\s*<a href="/admin/[\w/]+/" class="section"[^>]*>([^<]+)</a>', html)


def test_a_gateway_admin_sees_the_gateway_first_and_one_accounts_section(client, admin_user):
    client.force_login(admin_user)
    sections = section_names(client.get("/admin/").content.decode())
    assert sections == [
        "Gateway governance", "Usage analytics", "Chat history", "API access", "Accounts", "Schedules (Celery beat)",
    ]


def test_a_superuser_gets_the_same_order_with_the_other_apps_after(client, superuser):
    client.force_login(superuser)
    html = client.get("/admin/").content.decode()
    sections = section_names(html)
    assert sections[:5] == ["Gateway governance", "Usage analytics", "Chat history", "API access", "Accounts"]
    assert sections.count("Accounts") == 1
    assert set(sections[5:]) == {"Schedules (Celery beat)", "Sign-in providers"}
    # Users, groups (the roles) and e-mail addresses all live under the one "Accounts".
    accounts = html[html.index(">Accounts</a>") :]
    accounts = accounts[: accounts.index("</table>")]
    assert re.findall(r'<th scope="row" id="[\w-]+">\s*<a href="[^"]+"[^>]*>([^<]+)</a>', accounts) == [
        "Email addresses",
        "Groups",
        "Users",
    ]


def test_an_app_page_still_lists_only_that_app(client, superuser):
    client.force_login(superuser)
    assert section_names(client.get("/admin/auth/").content.decode()) == ["Authentication and Authorization"]


def test_every_admin_page_loads_the_column_styles(client, admin_user):
    client.force_login(admin_user)
    assert "quotas/admin-site.css" in client.get("/admin/quotas/quotapolicy/").content.decode()
