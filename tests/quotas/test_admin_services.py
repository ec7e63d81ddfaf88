"""The admin's saves and deletes reach the store through explicit service calls, after commit.

Each test drives the admin with the test client as an admin would and looks at what the store
holds; none makes a change through the ORM and expects a side effect.
"""
from __future__ import annotations

import pytest
from celery.signals import task_prerun
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dataplane.cache_keys import prepared_question_key
from quotas import services
from quotas.models import GroupPolicy, ModelCatalogueEntry, PolicyOutbox, PreparedResponse, QuotaPolicy

pytestmark = pytest.mark.django_db

POLICY_FORM = {
    "name": "Standard", "is_default": "on", "ten_minute_total": "30000", "monthly_total": "2000000",
    "cache_scope": "per_user", "guardrail": "default", "guardrail_stream_mode": "sync",
}


def catalogue_form(entry: ModelCatalogueEntry, **changes: str) -> dict[str, str]:
    form = {
        "provider": entry.provider, "model_id": entry.model_id, "display_name": entry.display_name,
        "visibility": entry.visibility, "endpoint_url": "", "enabled": "on",
        "default_max_tokens": str(entry.default_max_tokens),
        "price_in_per_1k": "0", "price_out_per_1k": "0",
        "group_access-TOTAL_FORMS": "0", "group_access-INITIAL_FORMS": "0",
    }
    if entry.available_to_all:
        form["available_to_all"] = "on"
    return {**form, **changes}


@pytest.fixture
def published(alice, bob, default_policy, demo_model, drain):
    with drain():
        services.policy_publish_request(users=[alice, bob], force=True)


@pytest.fixture
def tasks_run():
    """Names of the Celery tasks that ran (eagerly, here) while the test ran."""
    names: list[str] = []

    def record(sender=None, **kwargs) -> None:
        names.append(sender.name)

    task_prerun.connect(record, weak=False)
    yield names
    task_prerun.disconnect(record)


def test_a_policy_saved_in_the_admin_reaches_the_store_after_commit(
    client, admin_user, alice, published, gateway_store, django_capture_on_commit_callbacks, drain
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as after_commit:
        response = client.post(f"/admin/quotas/quotapolicy/{QuotaPolicy.objects.get().pk}/change/", POLICY_FORM)
    assert response.status_code == 302
    assert PolicyOutbox.objects.filter(sub=alice.sub, status="pending").exists()  # in the save's transaction
    assert gateway_store.policy_get(alice.sub).ten_minute.total == 20_000  # nothing left before commit
    with drain():
        for callback in after_commit:
            callback()
    assert gateway_store.policy_get(alice.sub).ten_minute.total == 30_000


def test_a_catalogue_change_is_republished_by_the_celery_task_not_in_the_request(
    client, admin_user, alice, bob, published, demo_model, gateway_store, tasks_run,
    django_capture_on_commit_callbacks, drain,
):
    client.force_login(admin_user)
    rows = PolicyOutbox.objects.count()
    with django_capture_on_commit_callbacks() as after_commit:
        response = client.post(
            f"/admin/quotas/modelcatalogueentry/{demo_model.pk}/change/",
            catalogue_form(demo_model, display_name="Echo"),
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert PolicyOutbox.objects.count() == rows  # no user's policy was recomputed in the request
    assert tasks_run == []
    with drain():
        for callback in after_commit:
            callback()
    assert tasks_run[0] == "quotas.catalogue_republish"
    for user in (alice, bob):
        assert [m.display_name for m in gateway_store.policy_get(user.sub).models] == ["Echo"]


def test_deleting_a_model_in_the_admin_takes_it_and_its_prepared_answers_out_of_the_store(
    client, admin_user, alice, published, demo_model, gateway_store, drain
):
    with drain():
        services.prepared_save(prepared=PreparedResponse(question="Hello?", answer="Hi.", model=demo_model))
    key = prepared_question_key("Hello?")
    assert gateway_store.prepared_get(question_key=key, model_id=demo_model.model_id).text == "Hi."
    client.force_login(admin_user)
    with drain():
        response = client.post(f"/admin/quotas/modelcatalogueentry/{demo_model.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert gateway_store.prepared_get(question_key=key, model_id=demo_model.model_id) is None
    assert gateway_store.policy_get(alice.sub).models == ()


def test_moving_a_group_policy_republishes_both_groups(
    client, admin_user, alice, bob, published, gateway_store, drain
):
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000)
    interns, contractors = Group.objects.create(name="Interns"), Group.objects.create(name="Contractors")
    client.force_login(admin_user)
    with drain():
        alice.groups.add(interns)
        bob.groups.add(contractors)
        client.post("/admin/quotas/grouppolicy/add/", {"group": interns.pk, "policy": strict.pk})
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"
    assignment = GroupPolicy.objects.get(group=interns)
    with drain():
        response = client.post(
            f"/admin/quotas/grouppolicy/{assignment.pk}/change/", {"group": contractors.pk, "policy": strict.pk}
        )
    assert response.status_code == 302
    assert gateway_store.policy_get(alice.sub).policy_name == "Standard"  # her group lost it
    assert gateway_store.policy_get(bob.sub).policy_name == "Strict"


def test_deleting_a_group_in_the_admin_republishes_its_members(
    client, superuser, alice, published, gateway_store, drain
):
    strict = QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000)
    team = Group.objects.create(name="Team")
    GroupPolicy.objects.create(group=team, policy=strict)
    with drain():
        alice.groups.add(team)
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"
    client.force_login(superuser)
    with drain():
        response = client.post(f"/admin/auth/group/{team.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert gateway_store.policy_get(alice.sub).policy_name == "Standard"


def test_a_user_added_in_the_admin_is_published(client, superuser, default_policy, gateway_store, drain):
    client.force_login(superuser)
    with drain():
        response = client.post(
            "/admin/accounts/user/add/",
            {"username": "erin", "password1": "a-long-Pass-phrase-42", "password2": "a-long-Pass-phrase-42",
             "usable_password": "true",
             "policy_override-TOTAL_FORMS": "0", "policy_override-INITIAL_FORMS": "0",
             "model_access-TOTAL_FORMS": "0", "model_access-INITIAL_FORMS": "0"},
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    erin = get_user_model().objects.get(username="erin")
    assert gateway_store.policy_get(erin.sub).policy_name == "Standard"


def test_prepared_answers_added_changed_and_deleted_in_the_admin_follow_in_the_store(
    client, admin_user, demo_model, gateway_store, drain
):
    client.force_login(admin_user)
    with drain():
        response = client.post(
            "/admin/quotas/preparedresponse/add/",
            {"question": "What is a token?", "answer": "A piece.", "enabled": "on"},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    prepared = PreparedResponse.objects.get()
    key = prepared_question_key("What is a token?")
    assert prepared.question_key == key
    assert gateway_store.prepared_get(question_key=key, model_id="any").text == "A piece."

    with drain():
        client.post(
            f"/admin/quotas/preparedresponse/{prepared.pk}/change/",
            {"question": "What is a token?", "answer": "A piece of text.", "model": demo_model.pk, "enabled": "on"},
        )
    assert gateway_store.prepared_get(question_key=key, model_id="any") is None  # moved to one model
    assert gateway_store.prepared_get(question_key=key, model_id=demo_model.model_id).text == "A piece of text."

    with drain():
        client.post(f"/admin/quotas/preparedresponse/{prepared.pk}/delete/", {"post": "yes"})
    assert gateway_store.prepared_get(question_key=key, model_id=demo_model.model_id) is None
