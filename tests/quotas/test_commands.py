"""`sync_policies`, `check_policy_drift` and `seed_demo`, against the real store adapters."""
from __future__ import annotations

from dataclasses import replace
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from dataplane.cache_keys import prepared_question_key
from dataplane.policy import EffectivePolicy, WindowLimits
from quotas.models import ModelCatalogueEntry, PolicyOutbox, PreparedResponse, QuotaPolicy

pytestmark = pytest.mark.django_db


def _drift() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_policy_drift", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request, use_store):
    return use_store(request.getfixturevalue(f"{request.param}_store"))


def test_drift_is_clean_after_sync_and_reports_a_manual_change(alice, bob, default_policy, demo_model, any_store):
    code, output = _drift()
    assert code == 1
    assert f"missing in store: alice ({alice.sub})" in output

    out = StringIO()
    call_command("sync_policies", stdout=out)
    assert "user policies and 0 prepared responses republished; 0 still pending." in out.getvalue()
    assert _drift() == (0, "No drift: the store matches Django.\n")

    # Someone edits the store by hand: a bigger limit for bob, and a policy for a stranger.
    tampered = any_store.policy_get(bob.sub)
    any_store.policy_put(replace(tampered, version=tampered.version + 1, monthly=WindowLimits(total=9_999_999)))
    any_store.policy_put(EffectivePolicy(sub="ghost-sub", version=1))
    code, output = _drift()
    assert code == 1
    assert f"different: bob ({bob.sub}): monthly: store=" in output
    assert "'total': 9999999" in output
    assert "'total': 1000000" in output
    assert "extra in store (no such user in Django): ghost-sub" in output
    assert "alice" not in output

    call_command("sync_policies", stdout=StringIO())
    code, output = _drift()
    assert code == 1
    assert "different" not in output
    assert "ghost-sub" in output


def test_sync_reports_a_store_outage(alice, default_policy, dead_store, use_store):
    use_store(dead_store)
    with pytest.raises(CommandError, match="store is unavailable; the outbox rows stay pending"):
        call_command("sync_policies", stdout=StringIO())
    assert PolicyOutbox.objects.filter(sub=alice.sub, status="pending").exists()
    with pytest.raises(CommandError) as raised:
        call_command("check_policy_drift", stdout=StringIO())
    assert raised.value.returncode == 2


def test_seed_demo_is_idempotent_and_publishes_everyone(alice, gateway_store):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())
    assert (
        ModelCatalogueEntry.objects.filter(model_id="demo.echo-v1", available_to_all=True, provider="demo").count() == 1
    )
    assert ModelCatalogueEntry.objects.filter(
        model_id="us.anthropic.claude-sonnet-4-20250514-v1:0", enabled=True
    ).exists()
    assert QuotaPolicy.objects.filter(is_default=True).count() == 1
    assert Group.objects.filter(name="Demo users").exists()
    assert PreparedResponse.objects.count() == 2

    stored = gateway_store.policy_get(alice.sub)
    assert stored.policy_name == "Standard"
    assert (stored.ten_minute.total, stored.monthly.total) == (20_000, 1_000_000)
    assert [m.model_id for m in stored.models] == ["demo.echo-v1"]
    answer = gateway_store.prepared_get(
        question_key=prepared_question_key("what is the AI gateway"), model_id="demo.echo-v1"
    )
    assert answer is not None
    assert "AI gateway" in answer.text
    assert _drift()[0] == 0


def test_seed_demo_keeps_an_admins_edits(db):
    call_command("seed_demo", stdout=StringIO())
    ModelCatalogueEntry.objects.filter(model_id="us.amazon.nova-pro-v1:0").update(display_name="Nova Pro (EU team)")
    QuotaPolicy.objects.filter(name="Standard").update(monthly_total=5)
    call_command("seed_demo", stdout=StringIO())
    assert ModelCatalogueEntry.objects.get(model_id="us.amazon.nova-pro-v1:0").display_name == "Nova Pro (EU team)"
    assert QuotaPolicy.objects.get(name="Standard").monthly_total == 5
