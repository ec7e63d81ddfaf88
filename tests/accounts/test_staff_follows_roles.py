"""Role membership manages staff status: no hidden "tick Staff" step, from either side."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import ANALYSTS, GATEWAY_ADMINS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def staff(user) -> bool:
    user.refresh_from_db()
    return user.is_staff


def test_joining_a_role_makes_staff_and_leaving_every_role_ends_it(alice):
    analysts, admins = Group.objects.get(name=ANALYSTS), Group.objects.get(name=GATEWAY_ADMINS)

    alice.groups.add(analysts)
    assert staff(alice)
    alice.groups.add(admins)
    alice.groups.remove(analysts)
    assert staff(alice)  # still in one role
    alice.groups.remove(admins)
    assert not staff(alice)


def test_membership_changed_from_the_group_side_counts_too(alice, bob):
    analysts = Group.objects.get(name=ANALYSTS)

    analysts.user_set.add(alice, bob)
    assert staff(alice)
    assert staff(bob)
    analysts.user_set.remove(bob)
    assert not staff(bob)
    analysts.user_set.clear()
    assert not staff(alice)


def test_other_groups_do_not_make_staff_and_superusers_stay_staff(alice, superuser):
    alice.groups.add(Group.objects.create(name="Demo users"))
    assert not staff(alice)
    superuser.groups.add(Group.objects.get(name=ANALYSTS))
    superuser.groups.clear()
    assert staff(superuser)


def test_an_analyst_added_in_the_admin_opens_the_admin_at_once(superuser, password):
    carol = UserFactory(username="carol")
    carol.set_password(password)
    carol.save()
    admin_client = Client()
    admin_client.force_login(superuser)
    page = admin_client.get(f"/admin/accounts/user/{carol.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name not in ("password", "user_permissions", "groups", "is_staff")
    }
    data.update(
        {
            "groups": [Group.objects.get(name=ANALYSTS).pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": carol.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": carol.date_joined.strftime("%H:%M:%S"),
            "is_active": "on",
        }
    )
    for inline in page.context["inline_admin_formsets"]:  # the governance inlines, left empty
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    response = admin_client.post(f"/admin/accounts/user/{carol.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response

    assert staff(carol)
    carol_client = Client()
    assert carol_client.login(username="carol", password=password)
    assert carol_client.get("/admin/").status_code == 200


def test_staff_status_is_not_a_checkbox_in_the_admin(superuser, alice):
    client = Client()
    client.force_login(superuser)
    page = client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()
    assert 'name="is_staff"' not in page
