"""The outbox: written in the change's transaction, drained after commit, idempotent by version."""
from __future__ import annotations

import pytest
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


def test_rollback_leaves_no_outbox_row(alice, default_policy, strict):
    def save_then_fail() -> None:
        with transaction.atomic():
            UserPolicyOverride.objects.create(user=alice, policy=strict)
            assert PolicyOutbox.objects.filter(sub=alice.sub, policy=strict, status="pending").exists()
            raise RuntimeError("the admin's save failed")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert not PolicyOutbox.objects.filter(policy=strict).exists()
    assert not UserPolicyOverride.objects.exists()


def test_change_is_published_after_commit_not_before(alice, default_policy, strict, gateway_store, drain):
    with drain():
        UserPolicyOverride.objects.create(user=alice, policy=strict)
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
        UserPolicyOverride.objects.create(user=alice, policy=strict)
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
    UserPolicyOverride.objects.create(user=alice, policy=strict)
    older.refresh_from_db()
    assert (older.status, older.result) == ("done", "superseded")
    assert PolicyOutbox.objects.filter(sub=alice.sub, status="pending").count() == 1


def test_group_policy_and_membership_changes_republish_members(
    alice, bob, superuser, default_policy, strict, gateway_store, drain
):
    team = Group.objects.create(name="Team")
    with drain():
        alice.groups.add(team)
        team.user_set.add(bob)  # the reverse side of the same relation
        GroupPolicy.objects.create(group=team, policy=strict)
    assert gateway_store.policy_get(alice.sub).policy_name == "Strict"
    assert gateway_store.policy_get(bob.sub).policy_name == "Strict"
    assert gateway_store.policy_get(superuser.sub).policy_name == "Standard"

    with drain():
        bob.groups.remove(team)
    assert gateway_store.policy_get(bob.sub).policy_name == "Standard"

    with drain():
        strict.monthly_total = 5000
        strict.save()
    assert gateway_store.policy_get(alice.sub).monthly.total == 5000
    assert gateway_store.policy_get(bob.sub).monthly.total == 1_000_000


def test_catalogue_change_reaches_every_user(alice, bob, default_policy, demo_model, gateway_store, drain):
    with drain():
        services.policy_publish_request(users=[alice, bob], force=True)
    assert [m.display_name for m in gateway_store.policy_get(bob.sub).models] == ["Demo model (offline)"]
    with drain():
        demo_model.display_name = "Echo"
        demo_model.save()
    assert [m.display_name for m in gateway_store.policy_get(alice.sub).models] == ["Echo"]
    with drain():
        services.catalogue_enabled_set(entries=ModelCatalogueEntry.objects.all(), enabled=False)
    assert gateway_store.policy_get(bob.sub).models == ()


def test_a_new_user_gets_the_default_published(default_policy, gateway_store, drain):
    from tests.factories import UserFactory

    with drain():
        carol = UserFactory(username="carol")
    assert gateway_store.policy_get(carol.sub).policy_name == "Standard"


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
        UserPolicyOverride.objects.create(user=alice, policy=strict)  # must not raise
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
        prepared = PreparedResponse.objects.create(question="What is the AI gateway?", answer="A gateway.")
    assert gateway_store.prepared_get(question_key=key, model_id="anything").text == "A gateway."

    with drain():
        prepared.model = haiku
        prepared.save()
    assert gateway_store.prepared_get(question_key=key, model_id="other-model") is None
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id).text == "A gateway."

    with drain():
        services.prepared_purge(prepared=prepared)
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is None
    prepared.refresh_from_db()
    assert prepared.enabled is False

    with drain():
        prepared.enabled = True
        prepared.save()
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is not None
    with drain():
        prepared.delete()
    assert gateway_store.prepared_get(question_key=key, model_id=haiku.model_id) is None
    assert not PreparedOutbox.objects.exclude(status=OutboxStatus.DONE).exists()


def test_signing_in_does_not_recompute_the_policy(alice, default_policy, monkeypatch, client, password):
    calls = []
    monkeypatch.setattr(services, "policy_publish_request", lambda **kwargs: calls.append(kwargs))

    assert client.login(username="alice", password=password)  # saves last_login only

    assert calls == []
    alice.first_name = "Alice"
    alice.save()
    assert len(calls) == 1
