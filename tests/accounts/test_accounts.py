"""Accounts: allauth pages in the project's look, stable `sub`, roles, the first admin."""
from __future__ import annotations

import re
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import override_settings

from accounts.roles import ANALYSTS, GATEWAY_ADMINS

pytestmark = pytest.mark.django_db


def test_role_groups_exist_after_migrate_with_their_permissions():
    admins = Group.objects.get(name=GATEWAY_ADMINS)
    analysts = Group.objects.get(name=ANALYSTS)
    assert admins.permissions.filter(codename="change_user").exists()
    assert analysts.permissions.filter(codename="view_user").exists()
    assert not analysts.permissions.filter(codename="change_user").exists()


def test_login_round_trip(client, alice, password):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b"AI Gateway" in page.content  # the project's own look

    response = client.post("/accounts/login/", {"login": "alice", "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert int(client.session["_auth_user_id"]) == alice.pk

    client.post("/accounts/logout/")
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client, alice):
    response = client.post("/accounts/login/", {"login": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"not correct" in response.content or b"incorrect" in response.content.lower()


def test_sign_up_gives_a_local_user_a_uuid_sub(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password1": "a-long-Pass-phrase-42",
            "password2": "a-long-Pass-phrase-42",
        },
    )
    assert response.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert uuid.UUID(carol.sub)


@override_settings(ACCOUNT_ALLOW_SIGNUPS=False)
def test_sign_up_can_be_closed(client):
    response = client.get("/accounts/signup/")
    assert b"closed" in response.content.lower()
    passwords = {"password1": "a-long-Pass-phrase-42", "password2": "a-long-Pass-phrase-42"}
    client.post("/accounts/signup/", {"username": "carol", "email": "carol@example.com", **passwords})
    assert not get_user_model().objects.filter(username="carol").exists()


def test_subs_are_unique_and_stable(alice, bob):
    sub = alice.sub
    alice.first_name = "Alice"
    alice.save()
    alice.refresh_from_db()
    assert alice.sub == sub != bob.sub


def test_cognito_users_get_their_cognito_sub(rf):
    from allauth.socialaccount.models import SocialAccount, SocialLogin

    from accounts.adapters import SocialAccountAdapter

    cognito_sub = "7d0c5e52-91b1-4a5b-8c43-2c1f0e0d9f11"
    user = get_user_model()()
    login = SocialLogin(user=user, account=SocialAccount(provider="amazon_cognito", uid=cognito_sub))
    populated = SocialAccountAdapter().populate_user(
        rf.get("/"), login, {"email": "dana@example.com", "username": "dana"}
    )
    assert populated.sub == cognito_sub


def test_ensure_admin_creates_one_admin_once_and_prints_its_password(client):
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    password = re.search(r"password: (\S+)", out.getvalue()).group(1)
    assert client.login(username="admin", password=password)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.groups.filter(name=GATEWAY_ADMINS).exists()

    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert "password" not in again.getvalue()
    assert get_user_model().objects.filter(is_superuser=True).count() == 1


def test_the_admin_is_only_for_staff(client, alice, admin_user, password):
    client.login(username="alice", password=password)
    assert client.get("/admin/").status_code == 302
    client.login(username=admin_user.username, password=password)
    assert client.get("/admin/").status_code == 200


def test_gateway_admins_manage_groups_and_analysts_only_view_them(client, admin_user, analyst_user, password):
    client.login(username=admin_user.username, password=password)
    assert client.get("/admin/auth/group/add/").status_code == 200
    client.login(username=analyst_user.username, password=password)
    assert client.get("/admin/auth/group/").status_code == 200
    assert client.get("/admin/auth/group/add/").status_code == 403


def test_a_gateway_admin_cannot_make_anyone_superuser_or_grant_raw_permissions(client, admin_user, alice):
    from django.contrib.auth.models import Permission

    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{admin_user.pk}/change/")
    assert page.status_code == 200
    assert b'name="is_superuser"' not in page.content
    assert b'name="user_permissions"' not in page.content
    group_page = client.get(f"/admin/auth/group/{Group.objects.get(name=GATEWAY_ADMINS).pk}/change/")
    assert b'name="permissions"' not in group_page.content

    every = [str(p.pk) for p in Permission.objects.all()[:5]]
    form_page = client.get(f"/admin/accounts/user/{alice.pk}/change/")
    inlines = {}
    for formset in form_page.context["inline_admin_formsets"]:
        prefix = formset.formset.prefix
        inlines.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(
        f"/admin/accounts/user/{alice.pk}/change/",
        {
            "username": "alice",
            "first_name": "Alice",
            "is_superuser": "on",
            "is_staff": "on",
            "is_active": "on",
            "user_permissions": every,
            "date_joined_0": "2026-11-01",
            "date_joined_1": "00:00:00",
            **inlines,
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    alice.refresh_from_db()
    assert alice.first_name == "Alice"  # the save went through...
    assert not alice.is_superuser
    assert not alice.user_permissions.exists()
    assert not alice.is_staff  # staff status follows roles, not a checkbox


def test_a_superuser_still_can(client, superuser):
    client.force_login(superuser)
    page = client.get(f"/admin/accounts/user/{superuser.pk}/change/")
    assert b'name="is_superuser"' in page.content


def _admin_pages(user) -> dict[str, str]:
    base = f"/admin/accounts/user/{user.pk}"
    return {"change": f"{base}/change/", "password": f"{base}/password/", "delete": f"{base}/delete/"}


def test_a_gateway_admin_cannot_take_over_a_superuser_or_another_admin(client, admin_user, superuser, alice, password):
    """Attack: a Gateway admin set the superuser's password in the admin and signed in as them."""
    from tests.factories import UserFactory

    grace = UserFactory(username="grace", is_staff=True, groups=[GATEWAY_ADMINS])
    client.force_login(admin_user)
    for target in (superuser, grace):
        pages = _admin_pages(target)
        assert client.get(pages["password"]).status_code == 403
        taken = client.post(pages["password"], {"password1": "Stolen-pass-123!", "password2": "Stolen-pass-123!"})
        assert taken.status_code == 403
        assert (
            client.post(pages["change"], {"username": target.username, "email": "mine@evil.example"}).status_code == 403
        )
        assert client.get(pages["delete"]).status_code == 403
        assert client.post(pages["delete"], {"post": "yes"}).status_code == 403
        target.refresh_from_db()
        assert target.check_password(password)
        assert target.email != "mine@evil.example"
        assert client.get(pages["change"]).status_code == 200  # still visible, read-only

    # Their own account and plain users' stay theirs to manage.
    assert client.get(_admin_pages(admin_user)["password"]).status_code == 200
    assert client.get(_admin_pages(alice)["password"]).status_code == 200


def test_a_superuser_may_change_another_admins_password(client, superuser, admin_user):
    client.force_login(superuser)
    page = _admin_pages(admin_user)["password"]
    assert client.get(page).status_code == 200
    new_password = {"password1": "Reset-by-root-42!", "password2": "Reset-by-root-42!", "usable_password": "true"}
    changed = client.post(page, new_password)
    assert changed.status_code == 302, changed.content.decode()[:2000]
    admin_user.refresh_from_db()
    assert admin_user.check_password("Reset-by-root-42!")


def test_the_admin_signs_in_through_allauth_which_locks_out_password_guessing(client, admin_user, password):
    """Attack: 156 wrong passwords on /admin/login/, never throttled, then the right one worked."""
    start = client.get("/admin/login/?next=/admin/")
    assert start.status_code == 302
    assert start["Location"].startswith("/accounts/login/")
    # Posting credentials to the admin's own form no longer signs anyone in.
    client.post("/admin/login/?next=/admin/", {"username": admin_user.username, "password": password})
    assert "_auth_user_id" not in client.session

    for _ in range(6):
        client.post("/accounts/login/", {"login": admin_user.username, "password": "guess"})
    locked = client.post("/accounts/login/", {"login": admin_user.username, "password": password})
    assert "_auth_user_id" not in client.session
    assert locked.status_code == 429 or b"Too many" in locked.content


def test_ensure_admin_names_the_address_the_site_is_served_on():
    out = StringIO()
    call_command("ensure_admin", "--site-url", "http://127.0.0.1:8123", stdout=out)
    assert "Sign in at http://127.0.0.1:8123/accounts/login/" in out.getvalue()
