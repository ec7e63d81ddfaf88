"""The resolution rule and the allowed-model union, as the effective policy document shows them."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from quotas.models import (
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)
from quotas.selectors import effective_policy_compute, policy_explain

pytestmark = pytest.mark.django_db


def _group(name, policy, *users):
    group = Group.objects.create(name=name)
    GroupPolicy.objects.create(group=group, policy=policy)
    for user in users:
        user.groups.add(group)
    return group


def test_default_applies_without_override_or_group(alice, default_policy):
    policy = effective_policy_compute(user=alice)
    assert policy.policy_name == "Standard"
    assert (policy.ten_minute.total, policy.monthly.total) == (20_000, 1_000_000)
    assert policy.sub == alice.sub


def test_most_generous_group_wins_by_monthly_then_ten_minute(alice, default_policy):
    small = QuotaPolicy.objects.create(name="Small", monthly_total=10, ten_minute_total=999_999)
    wide = QuotaPolicy.objects.create(name="Wide", monthly_total=5_000, ten_minute_total=100)
    wider = QuotaPolicy.objects.create(name="Wider", monthly_total=5_000, ten_minute_total=200)
    _group("A", small, alice)
    _group("B", wide, alice)
    _group("C", wider, alice)
    assert effective_policy_compute(user=alice).policy_name == "Wider"
    policy, reason = policy_explain(user=alice)
    assert policy == wider
    assert "from: C" in reason


def test_unlimited_is_the_most_generous(alice, default_policy):
    capped = QuotaPolicy.objects.create(name="Capped", monthly_total=10**12, ten_minute_total=10**9)
    unlimited = QuotaPolicy.objects.create(name="Unlimited month", monthly_total=None, ten_minute_total=5)
    _group("A", capped, alice)
    _group("B", unlimited, alice)
    assert effective_policy_compute(user=alice).policy_name == "Unlimited month"


def test_user_override_beats_groups(alice, default_policy):
    _group("A", QuotaPolicy.objects.create(name="Generous", monthly_total=None), alice)
    strict = QuotaPolicy.objects.create(name="Strict", monthly_total=100, ten_minute_total=10, never_cache=True)
    UserPolicyOverride.objects.create(user=alice, policy=strict)
    policy = effective_policy_compute(user=alice)
    assert policy.policy_name == "Strict"
    assert policy.never_cache is True
    assert policy_explain(user=alice)[1] == "This user's own override."


def test_no_policy_at_all_fails_closed(alice):
    policy = effective_policy_compute(user=alice)
    assert policy.models == ()
    assert policy.ten_minute.total == 0
    assert policy.monthly.total == 0


def test_disabled_account_fails_closed(alice, default_policy, demo_model):
    alice.is_active = False
    alice.save()
    policy = effective_policy_compute(user=alice)
    assert policy.models == ()
    assert policy.monthly.total == 0
    assert policy.policy_name == "(account disabled)"


def test_allowed_models_are_the_union_of_user_groups_and_open_models(alice, bob, default_policy, demo_model, haiku):
    nova = ModelCatalogueEntry.objects.create(
        provider="bedrock", model_id="us.amazon.nova-pro-v1:0", display_name="Nova Pro"
    )
    switched_off = ModelCatalogueEntry.objects.create(
        provider="bedrock", model_id="amazon.nova-lite-v1:0", display_name="Nova Lite", enabled=False
    )
    team = Group.objects.create(name="Team")
    alice.groups.add(team)
    GroupModelAccess.objects.create(group=team, model=haiku)
    GroupModelAccess.objects.create(group=team, model=switched_off)
    UserModelAccess.objects.create(user=alice, model=nova)

    alice_models = [m.model_id for m in effective_policy_compute(user=alice).models]
    bob_models = [m.model_id for m in effective_policy_compute(user=bob).models]

    assert alice_models == ["us.anthropic.claude-3-5-haiku-20241022-v1:0", "demo.echo-v1", "us.amazon.nova-pro-v1:0"]
    assert bob_models == ["demo.echo-v1"]
    haiku_doc = effective_policy_compute(user=alice).allowed_model(haiku.model_id)
    assert haiku_doc.price_in_per_1k == pytest.approx(0.0008)
    assert haiku_doc.provider == "bedrock"


def test_user_usage_reads_both_windows_with_limits_and_reset_times(alice, default_policy, gateway_store):
    from django.utils import timezone

    from dataplane.stores.base import TokenCount
    from quotas.selectors import usage_charges, user_usage

    charges = usage_charges(policy=effective_policy_compute(user=alice))
    spent = TokenCount(input=300, output=45)
    gateway_store.settle(
        reservation=gateway_store.reserve(sub=alice.sub, charges=charges, estimate=spent), actual=spent
    )

    ten_minute, month = user_usage(user=alice)
    assert (ten_minute.kind, ten_minute.total, ten_minute.limits.total) == ("10m", 345, 20_000)
    assert (month.kind, month.input, month.output, month.limits.total) == ("month", 300, 45, 1_000_000)
    now = timezone.now()
    assert now < ten_minute.resets_at <= now + timezone.timedelta(minutes=10)
    assert ten_minute.resets_at <= month.resets_at


def test_a_monthly_budget_becomes_the_monthly_cost_cap(alice, default_policy):
    from decimal import Decimal

    assert effective_policy_compute(user=alice).monthly.cost is None  # no budget: no cap
    default_policy.monthly_budget_usd = Decimal("12.50")
    default_policy.save()
    assert effective_policy_compute(user=alice).monthly.cost == 12_500_000  # micro-USD
    assert effective_policy_compute(user=alice).ten_minute.cost is None
