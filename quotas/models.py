"""What the control plane governs: models, who may use them, quota policies, prepared answers,
and the outboxes that carry each change to the data plane's store."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from dataplane.model_ids import model_id_problem
from dataplane.policy import PooledBudget, pool_owner
from dataplane.providers.demo import DEMO_PROVIDER_NAME
from dataplane.stores.base import usd_to_micro_usd
from dataplane.windows import MONTH, TEN_MINUTE, WINDOW_LABELS

NOT_NEGATIVE = MinValueValidator(0, message=_("A limit cannot be negative; leave it empty for no limit."))
PRICE_NOT_NEGATIVE = MinValueValidator(Decimal("0"), message=_("A price cannot be negative."))

# The limit parts as a sentence names them ("the monthly input limit").
_PARTS = {"total": _("total"), "input": _("input"), "output": _("output")}

RESOLUTION_RULE = _(
    "Which policy applies to a user: their own override if they have one; otherwise the most "
    "generous policy among their groups (the highest monthly total, then the highest 10-minute "
    "total; an empty limit means unlimited and is the most generous); otherwise the default policy."
)


class CacheScope(models.TextChoices):
    PER_USER = "per_user", _("Per user: an answer is replayed only to the user who asked")
    SHARED = "shared", _("Shared: an answer is replayed to anyone who asks exactly the same")


class GuardrailOption(models.TextChoices):
    NONE = "none", _("None")
    STACK_DEFAULT = "default", _("The stack's default guardrail")
    NAMED = "named", _("A named guardrail (identifier and version)")


class GuardrailStreamMode(models.TextChoices):
    SYNC = "sync", _("Synchronous: every chunk is checked before the user sees it")
    ASYNC = "async", _("Asynchronous: chunks stream at once and are checked alongside")


# Bedrock's guardrail identifier is its id or ARN; a version is a number or DRAFT.
GUARDRAIL_IDENTIFIER = r"^(?:[a-z0-9]{1,64}|arn:aws[a-z-]*:bedrock:[a-z0-9-]{1,20}:\d{12}:guardrail/[a-z0-9]{1,64})$"
GUARDRAIL_VERSION = r"^(?:[1-9]\d{0,7}|DRAFT)$"


class EndpointURLField(models.URLField):
    """A URL field whose form assumes https:// when the scheme is left out."""

    def formfield(self, **kwargs: Any) -> Any:  # type: ignore[override]  # as Django's URLField: **kwargs
        return super().formfield(**{"assume_scheme": "https", **kwargs})


class ModelCatalogueEntry(models.Model):
    class Provider(models.TextChoices):
        BEDROCK = "bedrock", _("Amazon Bedrock")
        OPENAI = "openai", _("OpenAI-compatible endpoint")
        DEMO = "demo", _(DEMO_PROVIDER_NAME)

    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public (foundation model or inference profile)")
        PRIVATE = "private", _("Private (imported, custom or provisioned)")

    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.BEDROCK)
    model_id = models.CharField(
        _("model id or ARN"),
        max_length=255,
        unique=True,
        help_text=(
            "Bedrock: a model id (anthropic.claude-3-5-haiku-20241022-v1:0), an inference profile "
            "(us.amazon.nova-pro-v1:0) or an ARN. Demo: demo.*. OpenAI-compatible: the served model name."
        ),
    )
    display_name = models.CharField(max_length=120, help_text=_("What users see in the model dropdown."))
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC)
    endpoint_url = EndpointURLField(
        _("endpoint URL"),
        blank=True,
        help_text=_("Base URL of the OpenAI-compatible server (required for that provider)."),
    )
    enabled = models.BooleanField(default=True, help_text=_("Disabled models are removed from every user's list."))
    available_to_all = models.BooleanField(
        default=False, help_text=_("Every user may use this model, whatever the allow-lists say."))
    default_max_tokens = models.PositiveIntegerField(
        _("default maxTokens"), default=1024, validators=[MinValueValidator(1, message=_("At least 1 token."))]
    )
    price_in_per_1k = models.DecimalField(
        _("USD per 1k input tokens"),
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[PRICE_NOT_NEGATIVE],
    )
    price_out_per_1k = models.DecimalField(
        _("USD per 1k output tokens"),
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[PRICE_NOT_NEGATIVE],
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("display_name",)
        verbose_name = _("catalogue model")
        verbose_name_plural = _("model catalogue")

    def __str__(self) -> str:
        return f"{self.display_name} ({self.model_id})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        problem = model_id_problem(provider=self.provider, model_id=self.model_id or "")
        if problem:
            errors["model_id"] = problem
        if self.provider == self.Provider.OPENAI and not self.endpoint_url:
            errors["endpoint_url"] = gettext("An OpenAI-compatible model needs the URL of its endpoint.")
        if errors:
            raise ValidationError(errors)


class GroupModelAccess(models.Model):
    """A group's allow-list entry: members of `group` may use `model`."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="model_access")
    model = models.ForeignKey(ModelCatalogueEntry, on_delete=models.CASCADE, related_name="group_access")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "model"], name="quotas_group_model_once")]
        verbose_name = _("group allow-list entry")
        verbose_name_plural = _("group allow-list")

    def __str__(self) -> str:
        return f"{self.group} → {self.model.display_name}"


class UserModelAccess(models.Model):
    """A user's own allow-list entry."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_access")
    model = models.ForeignKey(ModelCatalogueEntry, on_delete=models.CASCADE, related_name="user_access")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "model"], name="quotas_user_model_once")]
        verbose_name = _("user allow-list entry")
        verbose_name_plural = _("user allow-list")

    def __str__(self) -> str:
        return f"{self.user} → {self.model.display_name}"


def _limit(verbose: Any) -> models.BigIntegerField:
    # BigIntegerField (not Positive…) so the form shows our message rather than Django's generic one.
    return models.BigIntegerField(
        verbose, null=True, blank=True, validators=[NOT_NEGATIVE], help_text=_("Tokens; empty = no limit."))


class QuotaPolicy(models.Model):
    # Set on the rows of the admin's list by `quotas.admin_lists.policies_for_list` (annotations).
    list_group_count: int
    list_override_count: int
    list_failed: int
    list_pending: int
    list_published_version: int | None
    name = models.CharField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(
        _("default policy"),
        default=False,
        help_text=_("Applies to users without an override or a group policy. Exactly one policy is the default; "
        "use the “Make default” action to move it."),
    )
    unlimited = models.BooleanField(
        _("no token limits"),
        default=False,
        help_text=_("Tick to let these users use tokens without any limit. Without it, a policy needs at least one "
        "total limit: an empty form is not taken to mean “unlimited”."),
    )
    ten_minute_total = _limit(_("10-minute total"))
    ten_minute_input = _limit(_("10-minute input"))
    ten_minute_output = _limit(_("10-minute output"))
    monthly_total = _limit(_("monthly total"))
    monthly_input = _limit(_("monthly input"))
    monthly_output = _limit(_("monthly output"))
    monthly_budget_usd = models.DecimalField(
        _("monthly budget (USD)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"), message=_("A budget cannot be negative."))],
        help_text=_(
            "Enforced like a token limit: a request is refused when its possible cost (input estimate "
            "plus maximum answer, at the catalogue's prices) does not fit in what is left this month. "
            "Empty: no budget."
        ),
    )
    max_tokens_cap = models.PositiveIntegerField(
        _("maxTokens cap"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1, message=_("At least 1 token; leave it empty for no cap."))],
        help_text=_("Upper bound on one request's maxTokens."),
    )
    never_cache = models.BooleanField(
        default=False, help_text=_("Never read or write the answer cache for these users.")
    )
    log_prompts = models.BooleanField(
        default=False,
        help_text=_("Keep redacted, truncated prompt previews in the logs. Never for private requests or requests "
        "with personal data: those leave no preview at all."),
    )
    cache_scope = models.CharField(
        max_length=16,
        choices=CacheScope.choices,
        default=CacheScope.PER_USER,
        help_text=_("Who may get a cached answer. Per user (the safe default): only the user who asked the same "
        "question. Shared: anyone asking exactly the same request with the same model, which saves more tokens "
        "but replays one user's answer to others. Requests and answers with personal data are never cached "
        "either way."),
    )
    guardrail = models.CharField(
        max_length=16,
        choices=GuardrailOption.choices,
        default=GuardrailOption.STACK_DEFAULT,
        help_text=_("Amazon Bedrock Guardrail applied to Bedrock models: content filters, prompt-attack filter and "
        "personal-data masking. The stack's default is created by the CDK stack; where none is deployed (the "
        "embedded default) no guardrail applies."),
    )
    guardrail_identifier = models.CharField(
        max_length=200, blank=True, help_text=_("Only for a named guardrail: its id or ARN."))
    guardrail_version = models.CharField(
        max_length=16, blank=True, help_text=_("Only for a named guardrail: a version number, or DRAFT."))
    guardrail_stream_mode = models.CharField(
        max_length=8,
        choices=GuardrailStreamMode.choices,
        default=GuardrailStreamMode.SYNC,
        help_text=_("How the guardrail checks a streamed answer. Asynchronous gives a faster first token, but a "
        "user may see text before the guardrail blocks it."),
    )
    history_retention_days = models.PositiveIntegerField(
        "keep chat history (days)",
        null=True,
        blank=True,
        help_text="How long these users' conversations are kept on the server after their last message. "
        "Empty = kept until the user deletes them; 0 = not kept at all (the chat page says so, and existing "
        "history is deleted by the daily purge). Private conversations are deleted at sign-out whatever this says, "
        "and admins never see any conversation's title or text, only counts.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        verbose_name = _("quota policy")
        verbose_name_plural = _("quota policies")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="quotas_one_default_policy",
                violation_error_message=_("Only one policy can be the default."),
            )
        ]
        permissions = [
            ("view_live_usage", "Can view live usage"),
            ("reset_usage_window", "Can reset a user's usage window"),
            ("purge_answer_cache", "Can purge the answer cache"),
        ]

    def __str__(self) -> str:
        return self.name

    LIMIT_FIELDS = (
        "ten_minute_total", "ten_minute_input", "ten_minute_output", "monthly_total", "monthly_input", "monthly_output",
    )

    def _unlimited_problems(self) -> dict[str, str]:
        """“Unlimited” is a choice an admin makes, never what an empty form falls back to."""
        limits = [getattr(self, name) for name in self.LIMIT_FIELDS]
        if self.unlimited and any(limit is not None for limit in limits):
            return {
                "unlimited": gettext(
                    "A policy with no token limits cannot also set limits: clear them, or untick this."
                )
            }
        if not self.unlimited and self.ten_minute_total is None and self.monthly_total is None:
            return {
                "ten_minute_total": gettext(
                    "Set a 10-minute or a monthly total, or tick “no token limits” to let these users use tokens "
                    "without limit."
                )
            }
        return {}

    def _month_below_ten_minutes(self) -> dict[str, str]:
        """A month smaller than ten minutes makes the 10-minute limit unreachable: a typo, almost surely."""
        errors: dict[str, str] = {}
        for part in ("total", "input", "output"):
            ten_minute, monthly = getattr(self, f"ten_minute_{part}"), getattr(self, f"monthly_{part}")
            if ten_minute is not None and monthly is not None and monthly < ten_minute:
                errors[f"monthly_{part}"] = gettext(
                    "The monthly %(part)s limit (%(monthly)s) is below the 10-minute %(part)s limit (%(ten_minute)s). "
                    "Raise the monthly limit or lower the 10-minute one."
                ) % {"part": _PARTS[part], "monthly": f"{monthly:,}", "ten_minute": f"{ten_minute:,}"}
        return errors

    def clean(self) -> None:
        errors: dict[str, str] = self._unlimited_problems() | self._month_below_ten_minutes()
        labels = {
            "ten_minute": gettext(WINDOW_LABELS[TEN_MINUTE].adjective),
            "monthly": gettext(WINDOW_LABELS[MONTH].adjective),
        }
        for window, label in labels.items():
            total = getattr(self, f"{window}_total")
            for part in ("input", "output"):
                cap = getattr(self, f"{window}_{part}")
                if total is not None and cap is not None and cap > total:
                    errors[f"{window}_{part}"] = gettext(
                        "The %(window)s %(part)s limit (%(cap)s) is above the %(window)s total (%(total)s)."
                    ) % {"window": label, "part": _PARTS[part], "cap": f"{cap:,}", "total": f"{total:,}"}
        errors.update(self._guardrail_problems())
        # The one-default rule reads other rows: `quotas.admin_forms.QuotaPolicyAdminForm` checks it.
        if errors:
            raise ValidationError(errors)

    def _guardrail_problems(self) -> dict[str, str]:
        if self.guardrail != GuardrailOption.NAMED:
            return {}
        problems: dict[str, str] = {}
        if not re.match(GUARDRAIL_IDENTIFIER, self.guardrail_identifier or ""):
            problems["guardrail_identifier"] = gettext(
                "A named guardrail needs its id (lower-case letters and digits) or its ARN "
                "(arn:aws:bedrock:<region>:<account>:guardrail/<id>)."
            )
        if not re.match(GUARDRAIL_VERSION, self.guardrail_version or ""):
            problems["guardrail_version"] = gettext("A named guardrail needs a version: a number such as 1, or DRAFT.")
        return problems

    @property
    def generosity(self) -> tuple[float, float]:
        """Sort key of the resolution rule: monthly total, then 10-minute total; None = unlimited."""
        unlimited = float("inf")
        return (
            unlimited if self.monthly_total is None else float(self.monthly_total),
            unlimited if self.ten_minute_total is None else float(self.ten_minute_total),
        )


class GroupPolicy(models.Model):
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="quota_policy_assignment")
    policy = models.ForeignKey(QuotaPolicy, on_delete=models.PROTECT, related_name="group_assignments")

    class Meta:
        verbose_name = _("group policy")
        verbose_name_plural = _("group policies")

    def __str__(self) -> str:
        return f"{self.group} → {self.policy}"


class GroupBudget(models.Model):
    """A group's pooled monthly budget: what all its members together may spend in a month, on
    top of (never instead of) each member's own budget."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="pooled_budget")
    monthly_budget_usd = models.DecimalField(
        _("pooled monthly budget (USD)"),
        max_digits=12,
        decimal_places=2,
        validators=[
            MinValueValidator(
                Decimal("0.01"),
                message=_("A pooled budget must be more than zero. To have no pooled budget, delete it."),
            )
        ],
        help_text=_(
            "What all members of this group together may spend this month, at the catalogue's prices. "
            "Enforced like a member's own budget: a request whose possible cost does not fit in what the "
            "group has left is refused."
        ),
    )

    class Meta:
        verbose_name = _("pooled monthly budget")
        verbose_name_plural = _("Pooled monthly budget (shared by all members)")

    def __str__(self) -> str:
        return f"{self.group}: ${self.monthly_budget_usd}"

    @property
    def pool(self) -> PooledBudget:
        """The budget as the members' policy documents carry it."""
        return PooledBudget(
            key=pool_owner(self.group_id),
            name=self.group.name,
            cost=usd_to_micro_usd(float(self.monthly_budget_usd)),
        )


class UserPolicyOverride(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_override")
    policy = models.ForeignKey(QuotaPolicy, on_delete=models.PROTECT, related_name="user_overrides")
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("user policy override")
        verbose_name_plural = _("user policy overrides")

    def __str__(self) -> str:
        return f"{self.user} → {self.policy}"


class PreparedResponse(models.Model):
    # Set on the rows of the admin's list by `quotas.admin_lists.prepared_for_list` (annotations).
    list_outbox_status: str | None
    list_outbox_action: str | None
    question = models.TextField(
        help_text=_(
            "Matched up to case, spacing and trailing punctuation "
            "(“What is the AI gateway?” = “what is the ai gateway”)."
        ),
    )
    answer = models.TextField()
    model = models.ForeignKey(
        ModelCatalogueEntry,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="prepared_responses",
        help_text=_("Only for this model; empty = for every model."),
    )
    enabled = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text=_("Empty = never expires."))
    question_key = models.CharField(max_length=64, editable=False, db_index=True)
    # What the store holds for this row, so a changed question or scope deletes the old item.
    published_question_key = models.CharField(max_length=64, blank=True, editable=False)
    published_model_id = models.CharField(max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("question",)
        constraints = [
            models.UniqueConstraint(
                fields=["question_key", "model"],
                condition=Q(model__isnull=False),
                name="quotas_prepared_once_per_model",
            ),
            models.UniqueConstraint(
                fields=["question_key"], condition=Q(model__isnull=True), name="quotas_prepared_once_for_all"
            ),
        ]

    def __str__(self) -> str:
        return self.question[:80]

    # `question_key` is derived, and duplicates refused, by `quotas.services.prepared_save`.
    def clean(self) -> None:
        if not (self.question or "").strip():
            raise ValidationError({"question": gettext("Enter a question.")})

    @property
    def store_model_id(self) -> str:
        return self.model.model_id if self.model is not None else ""


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class PolicySyncState(models.Model):
    """Per user: the last version handed out, and what the store is known to hold."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_sync")
    last_version = models.BigIntegerField(default=0)
    published_version = models.BigIntegerField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sync state of {self.user}"


class PolicyOutbox(models.Model):
    """One effective-policy document to publish (or, with no document, a deletion)."""

    class Result(models.TextChoices):
        NONE = "", _("—")
        WRITTEN = "written", _("Written")
        SUPERSEDED = "superseded", _("Superseded by a newer version")
        DELETED = "deleted", _("Deleted from the store")

    sub = models.CharField(max_length=64, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy = models.ForeignKey(QuotaPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="outbox")
    version = models.BigIntegerField()
    document = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    result = models.CharField(max_length=12, choices=Result.choices, default=Result.NONE, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name = _("policy outbox row")
        verbose_name_plural = _("policy outbox")
        indexes = [models.Index(fields=["status", "version"], name="quotas_outbox_pending")]

    def __str__(self) -> str:
        return f"{self.sub} v{self.version} ({self.status})"


class PreparedOutbox(models.Model):
    """One prepared-response write or deletion to carry to the store, in order."""

    class Action(models.TextChoices):
        PUT = "put", _("Put")
        DELETE = "delete", _("Delete")

    action = models.CharField(max_length=8, choices=Action.choices)
    question_key = models.CharField(max_length=64)
    model_id = models.CharField(max_length=255, blank=True)
    document = models.JSONField(null=True, blank=True)
    prepared = models.ForeignKey(
        PreparedResponse, on_delete=models.SET_NULL, null=True, blank=True, related_name="outbox"
    )
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name = _("prepared-response outbox row")
        verbose_name_plural = _("prepared-response outbox")

    def __str__(self) -> str:
        return f"{self.action} {self.question_key[:12]}… ({self.status})"


class BudgetAlert(models.Model):
    """A monthly cost budget crossed a threshold: a user's own, or a group's pooled budget (then
    `group` is set and `user` is empty). One row per owner, month and threshold, so each alert
    goes out once however often the check runs."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="budget_alerts"
    )
    group = models.ForeignKey(Group, on_delete=models.CASCADE, null=True, blank=True, related_name="budget_alerts")
    month = models.CharField(max_length=7, help_text="The budget's month, e.g. 2026-12.")
    threshold = models.PositiveSmallIntegerField(help_text="Percent of the budget: 80 or 100.")
    cost_usd = models.DecimalField("spent (USD)", max_digits=14, decimal_places=6)
    budget_usd = models.DecimalField("budget (USD)", max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "month", "threshold"], name="one_budget_alert_per_threshold"),
            models.UniqueConstraint(
                fields=["group", "month", "threshold"], name="one_group_budget_alert_per_threshold"
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False),
                name="budget_alert_of_a_user_or_a_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_name} {self.month}: {self.threshold}% of ${self.budget_usd}"

    @property
    def owner_name(self) -> str:
        """The user's name, or the group's."""
        if self.user is not None:
            return self.user.get_username()
        return self.group.name if self.group is not None else ""
