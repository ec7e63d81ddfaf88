"""Reads: a user's effective policy, their live usage, sync status, spend and drift."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from dataplane.policy import AllowedModel, EffectivePolicy, GuardrailChoice, WindowLimits, is_pool_owner
from dataplane.stores.base import TokenCount, WindowCharge, WindowUsage, pooled_charges, usd_to_micro_usd
from dataplane.windows import current_windows, usage_level
from quotas import store as store_port
from quotas.models import (
    GroupBudget,
    ModelCatalogueEntry,
    OutboxStatus,
    PolicyOutbox,
    PolicySyncState,
    QuotaPolicy,
)

User = get_user_model()

NO_POLICY_NAME = "(no policy: access denied)"
DISABLED_NAME = "(account disabled)"
_DENY = WindowLimits(total=0, input=0, output=0)


# -- effective policy -------------------------------------------------------------------------
def policy_resolve(*, user: Any) -> QuotaPolicy | None:
    """The policy that applies to `user` (see `quotas.models.RESOLUTION_RULE`)."""
    override = QuotaPolicy.objects.filter(user_overrides__user=user).first()
    if override is not None:
        return override
    group_policies = list(QuotaPolicy.objects.filter(group_assignments__group__user=user).distinct())
    if group_policies:
        # Ties keep the alphabetically first name, so the choice is stable between publishes.
        return max(sorted(group_policies, key=lambda p: p.name, reverse=True), key=lambda p: p.generosity)
    return QuotaPolicy.objects.filter(is_default=True).first()


def policy_explain(*, user: Any) -> tuple[QuotaPolicy | None, str]:
    """The policy that applies and, in words, why (for the admin's user page)."""
    policy = policy_resolve(user=user)
    if policy is None:
        return None, gettext("No default policy exists, so this user is refused (fails closed).")
    if QuotaPolicy.objects.filter(user_overrides__user=user, pk=policy.pk).exists():
        return policy, gettext("This user's own override.")
    groups = list(user.groups.filter(quota_policy_assignment__policy=policy).values_list("name", flat=True))
    if groups:
        return policy, gettext("The most generous policy among the user's groups (from: %(groups)s).") % {
            "groups": ", ".join(sorted(groups))
        }
    return policy, gettext("The default policy (no override, no group policy).")


def allowed_models(*, user: Any) -> QuerySet[ModelCatalogueEntry]:
    """Enabled models the user may use: their own allow-list, their groups', and those open to all."""
    return (
        ModelCatalogueEntry.objects.filter(enabled=True)
        .filter(Q(available_to_all=True) | Q(user_access__user=user) | Q(group_access__group__user=user))
        .distinct()
        .order_by("display_name", "model_id")
    )


def catalogue_entry_allowed_model(*, entry: ModelCatalogueEntry) -> AllowedModel:
    """A catalogue entry as the data plane's policy document (and its providers) name it."""
    return AllowedModel(
        model_id=entry.model_id,
        display_name=entry.display_name,
        provider=entry.provider,
        default_max_tokens=entry.default_max_tokens,
        price_in_per_1k=float(entry.price_in_per_1k),
        price_out_per_1k=float(entry.price_out_per_1k),
        endpoint=entry.endpoint_url,
    )


def effective_policy_compute(*, user: Any, version: int = 0) -> EffectivePolicy:
    """What the data plane must enforce for `user`.

    Fails closed: a disabled account, or a user with no policy at all (no default exists), gets
    no models and zero limits rather than unlimited access.
    """
    if not user.is_active:
        return EffectivePolicy(
            sub=user.sub, version=version, ten_minute=_DENY, monthly=_DENY, policy_name=DISABLED_NAME
        )
    policy = policy_resolve(user=user)
    if policy is None:
        return EffectivePolicy(
            sub=user.sub, version=version, ten_minute=_DENY, monthly=_DENY, policy_name=NO_POLICY_NAME
        )
    return EffectivePolicy(
        sub=user.sub,
        version=version,
        models=tuple(catalogue_entry_allowed_model(entry=entry) for entry in allowed_models(user=user)),
        ten_minute=WindowLimits(
            total=policy.ten_minute_total, input=policy.ten_minute_input, output=policy.ten_minute_output
        ),
        monthly=WindowLimits(
            total=policy.monthly_total, input=policy.monthly_input, output=policy.monthly_output,
            cost=None if policy.monthly_budget_usd is None else usd_to_micro_usd(float(policy.monthly_budget_usd)),
        ),
        max_tokens_cap=policy.max_tokens_cap,
        never_cache=policy.never_cache,
        log_prompts=policy.log_prompts,
        policy_name=policy.name,
        cache_scope=policy.cache_scope,
        guardrail=_guardrail_choice(policy),
        pools=tuple(budget.pool for budget in group_budgets_of(user=user)),
    )


def group_budgets_of(*, user: Any) -> QuerySet[GroupBudget]:
    """The pooled budgets of the user's groups; each of the user's turns is charged to all."""
    return GroupBudget.objects.filter(group__user=user).select_related("group").order_by("group_id")


def group_budget_usage(*, budget: GroupBudget, now: datetime | None = None) -> WindowUsage:
    """What the group's members spent together this month, against the pooled budget.

    Raises `dataplane.errors.StoreUnavailableError` when the store cannot be read.
    """
    _, month = current_windows(now or timezone.now(), _month_timezone())
    pool = budget.pool
    [usage] = store_port.store_get().usage_read(sub=pool.key, charges=pooled_charges(month, (pool,)))
    return usage


def _guardrail_choice(policy: QuotaPolicy) -> GuardrailChoice | None:
    if policy.guardrail == "none":
        return None
    if policy.guardrail == "default":
        return GuardrailChoice(use_default=True, stream_mode=policy.guardrail_stream_mode)
    return GuardrailChoice(
        use_default=False,
        identifier=policy.guardrail_identifier,
        version=policy.guardrail_version,
        stream_mode=policy.guardrail_stream_mode,
    )


def policy_document_comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A policy document without its version, for "did anything change?" comparisons."""
    return {key: value for key, value in document.items() if key != "version"}


# -- usage --------------------------------------------------------------------------------------
def _month_timezone() -> str:
    from gateway_project.gateway import gateway_config

    return gateway_config().month_timezone


def usage_charges(*, policy: EffectivePolicy, now: datetime | None = None) -> list[WindowCharge]:
    ten_minute, month = current_windows(now or timezone.now(), _month_timezone())
    return [
        WindowCharge(window=ten_minute, limits=policy.ten_minute),
        WindowCharge(window=month, limits=policy.monthly),
    ]


def user_usage(*, user: Any) -> list[WindowUsage]:
    """The user's current 10-minute and monthly usage, with limits and reset times.

    Raises `dataplane.errors.StoreUnavailableError` when the store cannot be read.
    """
    policy = effective_policy_compute(user=user)
    return store_port.store_get().usage_read(sub=user.sub, charges=usage_charges(policy=policy))


@dataclass(frozen=True)
class UsageRow:
    user: Any
    usage: TokenCount
    limit: int | None

    @property
    def percent(self) -> int | None:
        return usage_percent(used=self.usage.total, limit=self.limit)

    @property
    def level(self) -> str:
        return usage_level(used=self.usage.total, limit=self.limit)


def usage_percent(*, used: int, limit: int | None) -> int | None:
    if limit is None:
        return None
    if limit == 0:
        return 100
    return min(100, round(100 * used / limit))


@dataclass(frozen=True)
class LiveUsage:
    ten_minute_key: str
    ten_minute_resets_at: datetime
    month_key: str
    month_resets_at: datetime
    ten_minute: list[UsageRow]
    month: list[UsageRow]


def live_usage_top(*, limit: int = 25, now: datetime | None = None) -> LiveUsage:
    """The heaviest users of the current 10-minute window and month, for the admins' live page."""
    ten_minute, month = current_windows(now or timezone.now(), _month_timezone())
    store = store_port.store_get()
    by_window = {}
    for window, kind in ((ten_minute, "ten_minute"), (month, "monthly")):
        counts = {owner: usage for owner, usage in store.usage_list(window_key=window.key).items()
                  if not is_pool_owner(owner)}
        top = sorted(counts.items(), key=lambda item: item[1].total, reverse=True)[:limit]
        users = User.objects.in_bulk([sub for sub, _ in top], field_name="sub")
        rows = []
        for sub, usage in top:
            user = users.get(sub)
            if user is None:
                continue
            policy = policy_resolve(user=user)
            window_limit = getattr(policy, f"{kind}_total", None) if policy else 0
            rows.append(UsageRow(user=user, usage=usage, limit=window_limit))
        by_window[kind] = rows
    return LiveUsage(
        ten_minute_key=ten_minute.key,
        ten_minute_resets_at=ten_minute.resets_at,
        month_key=month.key,
        month_resets_at=month.resets_at,
        ten_minute=by_window["ten_minute"],
        month=by_window["monthly"],
    )


@dataclass(frozen=True)
class SpendEstimate:
    """Month-to-date spend. Usage windows count tokens, not tokens per model, so the estimate is
    a range: every token at the cheapest allowed model's price, and at the priciest's."""

    low_usd: Decimal
    high_usd: Decimal
    budget_usd: Decimal | None

    @property
    def percent_of_budget(self) -> int | None:
        if self.budget_usd is None:
            return None
        if self.budget_usd == 0:
            return 100
        return min(100, round(100 * self.high_usd / self.budget_usd))


def user_spend_estimate(*, user: Any, month_usage: WindowUsage) -> SpendEstimate:
    policy = policy_resolve(user=user)
    budget = policy.monthly_budget_usd if policy else None
    costs = [
        (Decimal(month_usage.input) * entry.price_in_per_1k + Decimal(month_usage.output) * entry.price_out_per_1k)
        / 1000
        for entry in allowed_models(user=user)
    ]
    if not costs:
        costs = [Decimal(0)]
    cent = Decimal("0.01")
    return SpendEstimate(low_usd=min(costs).quantize(cent), high_usd=max(costs).quantize(cent), budget_usd=budget)


# -- sync status --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncStatus:
    published_version: int | None
    published_at: datetime | None
    last_error: str
    pending: int
    failed: int


def user_sync_status(*, user: Any) -> SyncStatus:
    state = PolicySyncState.objects.filter(user=user).first()
    counts = PolicyOutbox.objects.filter(sub=user.sub).aggregate(
        pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
        failed=Count("id", filter=Q(status=OutboxStatus.FAILED)),
    )
    return SyncStatus(
        published_version=state.published_version if state else None,
        published_at=state.published_at if state else None,
        last_error=state.last_error if state else "",
        pending=counts["pending"],
        failed=counts["failed"],
    )


def policy_sync_status(*, policy: QuotaPolicy) -> SyncStatus:
    rows = PolicyOutbox.objects.filter(policy=policy)
    counts = rows.aggregate(
        pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
        failed=Count("id", filter=Q(status=OutboxStatus.FAILED)),
        published_at=Max("published_at"),
        published_version=Max("version", filter=Q(status=OutboxStatus.DONE)),
    )
    last_error = (
        rows.exclude(last_error="")
        .exclude(status=OutboxStatus.DONE)
        .order_by("-id")
        .values_list("last_error", flat=True)
        .first()
        or ""
    )
    return SyncStatus(
        published_version=counts["published_version"],
        published_at=counts["published_at"],
        last_error=last_error,
        pending=counts["pending"],
        failed=counts["failed"],
    )


def outbox_pending_count() -> int:
    return PolicyOutbox.objects.filter(status=OutboxStatus.PENDING).count()


# -- drift ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyDrift:
    sub: str
    username: str
    kind: str  # missing | extra | different
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (store, django)

    def describe(self) -> str:
        who = f"{self.username} ({self.sub})" if self.username else self.sub
        if self.kind == "missing":
            return f"missing in store: {who}"
        if self.kind == "extra":
            return f"extra in store (no such user in Django): {who}"
        parts = "; ".join(f"{name}: store={store!r} django={django!r}" for name, (store, django) in self.fields.items())
        return f"different: {who}: {parts}"


def policy_drift_list() -> list[PolicyDrift]:
    """Every difference between the store's policies and what Django computes now.

    Raises `StoreUnavailableError` when the store cannot be read.
    """
    stored = {policy.sub: policy for policy in store_port.store_get().policy_list()}
    drifts: list[PolicyDrift] = []
    for user in User.objects.order_by("username"):
        expected = policy_document_comparable(effective_policy_compute(user=user).to_document())
        found = stored.pop(user.sub, None)
        if found is None:
            drifts.append(PolicyDrift(sub=user.sub, username=user.username, kind="missing"))
            continue
        actual = policy_document_comparable(found.to_document())
        different = {
            name: (actual.get(name), expected.get(name))
            for name in sorted(set(expected) | set(actual))
            if actual.get(name) != expected.get(name)
        }
        if different:
            drifts.append(PolicyDrift(sub=user.sub, username=user.username, kind="different", fields=different))
    drifts.extend(PolicyDrift(sub=sub, username="", kind="extra") for sub in sorted(stored))
    return drifts
