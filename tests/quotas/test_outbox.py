"""The outbox: written in the change's transaction, drained after commit, idempotent by version.

Changes are made the way the admin makes them: the row is saved, then the service that says
what changed is called in the same transaction.
"""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from dataplane.cache_keys import prepared_question_key
from quotas import services
from quotas.models import (
    GroupPolicy,
    ModelCatalogueEntry,
    OutboxStatus,
    PolicyOutbox,
    PolicySyncState,
    PreparedOutbox,
    PreparedResponse,
    QuotaPolicy,
    UserPolicyOverride,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(db):
    return QuotaPolicy.objects.create(name="Strict", ten_minute_total=100, monthly_total=1000, never_cache=True)


def override(user, policy) -> UserPolicyOverride:
    assignment = UserPolicyOverride.objects.create(user=user, policy=policy)
    services.assignment_change_publish(user_ids=[user.pk])
    return assignment


def test_rollback_leaves_no_outbox_row(alice, default_policy, strict):
    def save_then_fail() -> None:
        with transaction.atomic():
            override(alice, strict)
            assert PolicyOutbox.objects.filter(sub=alice.sub, policy=strict, status="pending").exists()
            raise RuntimeError("the admin's save failed")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert not PolicyOutbox.objects.filter(policy=strict).exists()
    assert not UserPolicyOverride.objects.exists()


def test_change_is_published_after_commit_not_before(alice, default_policy, strict, gateway_store, drain):
    with drain():
        override(alice, strict)
        assert gateway_store.policy_get(alice.sub) is None  # nothing leaves before commit
    stored = gateway_store.policy_get(alice.sub)
    assert stored.policy_name == "Strict"
    assert stored.never_cache is True
    row = PolicyOutbox.objects.filter(sub=alice.sub).order_by("-version").first()
    assert (row.status, row.result, row.attempts) == ("done", "written", 1)
    assert stored.version == row.version
    state = PolicySyncState.objects.get(user=alice)
    assert state.published_version == row.version
    assert state.published_at is not None
    assert not PolicyOutbox.objects.filter(status="pending").exists()


def test_versions_increase_and_an_older_version_never_overwrites(alice, default_policy, strict, gateway_store, drain):
    with drain():
        services.policy_publish_request(users=[alice], force=True)
    first = PolicyOutbox.objects.filter(sub=alice.sub).order_by("-version").first()
    with drain():
        override(alice, strict)
    second = PolicyOutbox.objects.filter(sub=alice.sub).order_by("-version").first()
    assert second.version > first.version
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"

    # Replay the older row (a slow worker, a retried task): the store refuses it.
    PolicyOutbox.objects.filter(pk=first.pk).update(status="pending")
    services.outbox_drain()
    first.refresh_from_db()
    assert (first.status, first.result) == ("done", "superseded")
    assert gateway_store.policy_get(alice.sub).version == second.version
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"


def test_unchanged_policies_are_not_queued_again(alice, default_policy, drain):
    with drain():
        services.policy_publish_request(users=[alice])
    count = PolicyOutbox.objects.filter(sub=alice.sub).count()
    with drain():
        alice.first_name = "Alice"
        alice.save()  # nothing in her policy depends on her name
        services.policy_publish_request(users=[alice])
    assert PolicyOutbox.objects.filter(sub=alice.sub).count() == count
    with drain():
        assert services.policy_publish_request(users=[alice], force=True) == 1


def test_newer_request_supersedes_a_pending_one(alice, default_policy, strict):
    services.policy_publish_request(users=[alice], force=True)
    older = PolicyOutbox.objects.filter(sub=alice.sub, status="pending").get()
    override(alice, strict)
    older.refresh_from_db()
    assert (older.status, older.result) == ("done", "superseded")
    assert PolicyOutbox.objects.filter(sub=alice.sub, status="pending").count() == 1


def test_group_policy_and_membership_changes_republish_members(
    alice, bob, superuser, default_policy, strict, gateway_store, drain
):
    team = Group.objects.create(name="Team")
    with drain():
        services.policy_publish_request(users=[superuser])
        alice.groups.add(team)
        team.user_set.add(bob)  # the reverse side of the same relation
        GroupPolicy.objects.create(group=team, policy=strict)
        services.assignment_change_publish(group_ids=[team.pk])
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"
    assert gateway_store.policy_get(bob.sub).policy_name == "Strict"
    assert gateway_store.policy_get(superuser.sub).policy_name == "Standard"

    with drain():
        bob.groups.remove(team)
    assert gateway_store.policy_get(bob.sub).policy_name == "Standard"

    with drain():
        strict.monthly_total = 5000
        strict.save()
        services.policy_change_publish(policy=strict)
    assert gateway_store.policy_get(alice.sub).monthly.total == 5000
    assert gateway_store.policy_get(bob.sub).monthly.total == 1_000_000


def test_catalogue_change_reaches_every_user(alice, bob, default_policy, demo_model, gateway_store, drain):
    with drain():
        services.policy_publish_request(users=[alice, bob], force=True)
    assert [m.display_name for m in gateway_store.policy_get(bob.sub).models] == ["Demo model (offline)"]
    with drain():
        demo_model.display_name = "Echo"
        demo_model.save()
        services.catalogue_republish_request(entry_ids=[demo_model.pk])
    assert [m.display_name for m in gateway_store.policy_get(alice.sub).models] == ["Echo"]
    with drain():
        services.catalogue_enabled_set(entries=ModelCatalogueEntry.objects.all(), enabled=False)
    assert gateway_store.policy_get(bob.sub).models == ()


def test_a_user_who_signs_up_gets_the_default_published(client, default_policy, gateway_store, drain):
    with drain():
        response = client.post(
            "/accounts/signup/",
            {"username": "carol", "email": "carol@example.com",
             "password1": "a-long-Pass-phrase-42", "password2": "a-long-Pass-phrase-42"},
        )
    assert response.status_code == 302
    carol = get_user_model().objects.get(username="carol")
    assert gateway_store.policy_get(carol.sub).policy_name == "Standard"


def test_a_first_cognito_sign_in_publishes_the_new_users_policy(rf, default_policy, gateway_store, drain):
    from allauth.socialaccount.models import SocialAccount, SocialLogin
    from django.contrib.sessions.middleware import SessionMiddleware

    from accounts.adapters import SocialAccountAdapter

    request = rf.get("/accounts/amazon-cognito/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    adapter = SocialAccountAdapter()
    account = SocialAccount(provider="amazon_cognito", uid="c0ffee-sub")
    sociallogin = SocialLogin(user=get_user_model()(), account=account)
    sociallogin.user = adapter.populate_user(request, sociallogin, {"email": "fay@example.com", "username": "fay"})
    with drain():
        adapter.save_user(request, sociallogin)
    assert gateway_store.policy_get("c0ffee-sub").policy_name == "Standard"


def test_a_user_created_behind_the_services_back_is_published_at_first_sign_in(
    client, default_policy, gateway_store, password, drain
):
    # As Django's createsuperuser or a script would: no governance service runs.
    dora = get_user_model().objects.create_user("dora", "dora@example.com", password)
    assert gateway_store.policy_get(dora.sub) is None
    with drain():
        response = client.post("/accounts/login/", {"login": "dora", "password": password})
    assert response.status_code == 302
    assert gateway_store.policy_get(dora.sub).policy_name == "Standard"
    with drain():
        client.post("/accounts/logout/")
        client.post("/accounts/login/", {"login": "dora", "password": password})
    assert PolicyOutbox.objects.filter(sub=dora.sub).count() == 1  # later sign-ins publish nothing


def test_deleting_a_user_deletes_their_policy(alice, default_policy, gateway_store, drain):
    with drain():
        services.policy_publish_request(users=[alice], force=True)
    sub = alice.sub
    assert gateway_store.policy_get(sub) is not None
    with drain():
        alice.delete()
    assert gateway_store.policy_get(sub) is None
    assert PolicyOutbox.objects.filter(sub=sub, result="deleted", status="done").count() == 1


def test_store_down_keeps_the_change_and_the_row_pending_until_it_returns(
    alice, default_policy, strict, dead_store, sqlite_store, use_store, drain
):
    use_store(dead_store)
    with drain():
        override(alice, strict)  # must not raise
    assert UserPolicyOverride.objects.filter(user=alice).exists()
    row = PolicyOutbox.objects.filter(sub=alice.sub).order_by("-version").first()
    assert row.status == "pending"
    assert row.attempts == 1
    assert "DynamoDB" in row.last_error
    assert "DynamoDB" in PolicySyncState.objects.get(user=alice).last_error

    use_store(sqlite_store)
    result = services.outbox_drain()
    row.refresh_from_db()
    assert row.status == "done"
    assert row.attempts == 2
    assert row.last_error == ""
    assert result.written >= 1
    assert sqlite_store.policy_get(alice.sub).policy_name == "Strict"


def test_prepared_responses_follow_their_row(haiku, gateway_store, drain):
    key = prepared_question_key("What is the AI gateway?")
    with drain():
        prepared = PreparedResponse(question="What is the AI gateway?", answer="A gateway.")
        services.prepared_save(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id="anything").text == "A gateway."

    with drain():
        prepared.model = haiku
        services.prepared_save(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id="other-model") is None
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id).text == "A gateway."

    with drain():
        services.prepared_purge(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is None
    prepared.refresh_from_db()
    assert prepared.enabled is False

    with drain():
        prepared.enabled = True
        services.prepared_save(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is not None
    with drain():
        services.prepared_delete(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is None
    assert not PreparedOutbox.objects.exclude(status=OutboxStatus.DONE).exists()


def test_saving_a_user_or_signing_in_does_not_touch_the_outbox(
    alice, superuser, default_policy, client, password, drain
):
    with drain():
        services.policy_publish_request(users=[alice, superuser], force=True)
    rows = PolicyOutbox.objects.count()
    state = PolicySyncState.objects.get(user=alice).last_version
    with drain():
        response = client.post("/accounts/login/", {"login": "alice", "password": password})  # saves last_login
        assert response.status_code == 302
        alice.refresh_from_db()
        alice.first_name = "Alice"
        alice.save()  # nothing in her policy depends on her name
        superuser.is_active = False
        superuser.save()  # even a change that matters is the caller's to publish, not save()'s
    assert PolicyOutbox.objects.count() == rows
    assert PolicySyncState.objects.get(user=alice).last_version == state


def test_a_prepared_row_the_store_rejects_fails_alone_and_the_drain_goes_on(
    alice, default_policy, gateway_store, drain
):
    # One drain loop serves both outboxes: a prepared row now fails the way a policy row does,
    # instead of stopping every row queued after it.
    broken = PreparedOutbox.objects.create(
        action=PreparedOutbox.Action.PUT, question_key="k" * 64, document={"question_key": "k" * 64}
    )
    with drain():
        good = services.prepared_save(prepared=PreparedResponse(question="Hello?", answer="Hi."))
        services.policy_publish_request(users=[alice], force=True)
    result = services.outbox_drain()
    broken.refresh_from_db()
    assert (broken.status, broken.attempts) == ("failed", 1)
    assert "TypeError" in broken.last_error
    assert result.failed == 0  # it had already failed in the drain after commit
    assert gateway_store.prepared_get(question_key=good.question_key, model_id="").text == "Hi."
    assert gateway_store.policy_get(alice.sub).policy_name == "Standard"
