"""The governance admin: catalogue, allow-lists, policies, assignments, prepared answers, sync.

Admin classes only arrange what a person sees; every change goes through `quotas.services`:
actions call them, and saves and deletes call them from `save_related` / `delete_model` /
`delete_queryset` (after the inlines are saved, so the published document sees them).
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin as AccountsUserAdmin
from dataplane.errors import StoreUnavailableError
from dataplane.stores.base import micro_usd_to_usd
from dataplane.windows import MONTH, TEN_MINUTE, WINDOW_LABELS, usage_level
from quotas import selectors, services
from quotas.admin_forms import PreparedResponseAdminForm, QuotaPolicyAdminForm
from quotas.admin_lists import groups_for_list, policies_for_list, policy_names_for_users, prepared_for_list
from quotas.admin_views import test_selected_models
from quotas.models import (
    RESOLUTION_RULE,
    BudgetAlert,
    GroupBudget,
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    OutboxStatus,
    PolicyOutbox,
    PreparedOutbox,
    PreparedResponse,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)

User = get_user_model()
ADMIN_CSS = {"all": ("quotas/admin.css",)}


def _store_error_message(error: StoreUnavailableError) -> str:
    text = gettext("The gateway store is unavailable (%(error)s). Nothing was changed in the store.")
    return text % {"error": error.message}


# -- inlines ------------------------------------------------------------------------------------
class GroupModelAccessByGroupInline(admin.TabularInline):
    model = GroupModelAccess
    fk_name = "group"
    extra = 0
    autocomplete_fields = ("model",)
    verbose_name = _("allowed model")
    verbose_name_plural = _("Allowed models (members may use these)")


class GroupModelAccessByModelInline(admin.TabularInline):
    model = GroupModelAccess
    fk_name = "model"
    extra = 0
    verbose_name = _("group allowed to use this model")
    verbose_name_plural = _("Groups allowed to use this model")


class GroupPolicyInline(admin.StackedInline):
    model = GroupPolicy
    extra = 0
    max_num = 1
    can_delete = True
    verbose_name = _("quota policy of this group")
    verbose_name_plural = _("Quota policy of this group")


class GroupBudgetInline(admin.StackedInline):
    model = GroupBudget
    extra = 0
    max_num = 1
    can_delete = True
    readonly_fields = ("spent_this_month",)

    @admin.display(description=_("spent this month"))
    def spent_this_month(self, budget: GroupBudget) -> str:
        if budget.pk is None:
            return "—"
        try:
            usage = selectors.group_budget_usage(budget=budget)
        except StoreUnavailableError as error:
            return _store_error_message(error)
        figures = {
            "spent": f"${micro_usd_to_usd(usage.cost):,.2f}",
            "budget": f"${budget.monthly_budget_usd:,.2f}",
            "percent": selectors.usage_percent(used=usage.cost, limit=usage.limits.cost),
        }
        return gettext("%(spent)s of %(budget)s (%(percent)s%%)") % figures


class UserPolicyOverrideInline(admin.StackedInline):
    model = UserPolicyOverride
    extra = 0
    max_num = 1
    verbose_name = _("policy override")
    verbose_name_plural = _("Policy override (wins over group and default policies)")


class UserModelAccessInline(admin.TabularInline):
    model = UserModelAccess
    extra = 0
    autocomplete_fields = ("model",)
    verbose_name = _("allowed model")
    verbose_name_plural = _("Allowed models (in addition to the user's groups and models open to all)")


# -- model catalogue ------------------------------------------------------------------------------
@admin.register(ModelCatalogueEntry)
class ModelCatalogueEntryAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "model_id",
        "provider",
        "visibility",
        "enabled",
        "available_to_all",
        "price_in_per_1k",
        "price_out_per_1k",
        "default_max_tokens",
    )
    list_filter = ("provider", "visibility", "enabled", "available_to_all")
    search_fields = ("display_name", "model_id")
    ordering = ("display_name",)
    inlines = (GroupModelAccessByModelInline,)
    fieldsets = (
        (None, {"fields": ("provider", "model_id", "display_name", "visibility", "endpoint_url")}),
        (_("Availability"), {"fields": ("enabled", "available_to_all")}),
        (_("Requests and prices"), {"fields": ("default_max_tokens", "price_in_per_1k", "price_out_per_1k")}),
    )
    actions = ("enable_selected", "disable_selected", test_selected_models)

    class Media:
        css = ADMIN_CSS

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.catalogue_republish_request(entry_ids=[form.instance.pk])

    def delete_model(self, request: HttpRequest, obj: ModelCatalogueEntry) -> None:
        services.catalogue_entry_delete(entry=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for entry in queryset:
            services.catalogue_entry_delete(entry=entry)

    @admin.action(description=_("Enable selected models"), permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = services.catalogue_enabled_set(entries=queryset, enabled=True)
        self.message_user(request, ngettext(
            "Enabled %(count)s model; every user's policy is being republished.",
            "Enabled %(count)s models; every user's policy is being republished.", changed,
        ) % {"count": changed})

    @admin.action(description=_("Disable selected models"), permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = services.catalogue_enabled_set(entries=queryset, enabled=False)
        self.message_user(request, ngettext(
            "Disabled %(count)s model; every user's policy is being republished.",
            "Disabled %(count)s models; every user's policy is being republished.", changed,
        ) % {"count": changed})


# -- quota policies -------------------------------------------------------------------------------
@admin.register(QuotaPolicy)
class QuotaPolicyAdmin(admin.ModelAdmin):
    form = QuotaPolicyAdminForm
    list_display = (
        "name",
        "is_default",
        "ten_minute_total",
        "monthly_total",
        "monthly_budget_usd",
        "max_tokens_cap",
        "never_cache",
        "log_prompts",
        "assigned_to",
        "sync_summary",
    )
    list_filter = ("is_default", "never_cache", "cache_scope", "guardrail", "log_prompts")
    search_fields = ("name", "description")
    readonly_fields = ("sync_panel",)
    fieldsets = (
        (None, {"fields": ("name", "description", "is_default", "unlimited"), "description": RESOLUTION_RULE}),
        (_("10-minute window"), {"fields": ("ten_minute_total", "ten_minute_input", "ten_minute_output")}),
        (_("Calendar month"), {"fields": ("monthly_total", "monthly_input", "monthly_output", "monthly_budget_usd")}),
        (_("Requests and privacy"), {"fields": ("max_tokens_cap", "never_cache", "cache_scope", "log_prompts")}),
        (_("Chat history"), {"fields": ("history_retention_days",)}),
        (
            _("Bedrock guardrail"),
            {"fields": ("guardrail", "guardrail_identifier", "guardrail_version", "guardrail_stream_mode")},
        ),
        (_("Sync to the gateway store"), {"fields": ("sync_panel",)}),
    )
    actions = ("make_default", "republish_selected")

    class Media:
        css = ADMIN_CSS

    def has_delete_permission(self, request: HttpRequest, obj: QuotaPolicy | None = None) -> bool:
        if obj is not None and obj.is_default:
            return False  # there must always be a default policy
        return super().has_delete_permission(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.policy_change_publish(policy=form.instance)

    def delete_model(self, request: HttpRequest, obj: QuotaPolicy) -> None:
        services.policy_delete(policy=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for policy in queryset:
            services.policy_delete(policy=policy)

    def get_urls(self) -> list[URLPattern]:
        # The live-usage page sits with the policies whose permission guards it; admin_view
        # gives it the admin's login, CSRF and "staff only" checks.
        live_usage = path(
            "live-usage/", self.admin_site.admin_view(live_usage_view), name="quotas_live_usage"
        )
        return [live_usage, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return policies_for_list(super().get_queryset(request))  # list columns without per-row queries

    @admin.display(description=_("assigned to"))
    def assigned_to(self, policy: QuotaPolicy) -> str:
        if policy.is_default:
            return gettext("everyone else (default)")
        return gettext("%(groups)s group(s), %(users)s user override(s)") % {
            "groups": policy.list_group_count, "users": policy.list_override_count,
        }

    @admin.display(description=_("sync"))
    def sync_summary(self, policy: QuotaPolicy) -> str:
        if policy.list_failed:
            return gettext("%(count)s failed") % {"count": policy.list_failed}
        if policy.list_pending:
            return gettext("%(count)s pending") % {"count": policy.list_pending}
        return f"v{policy.list_published_version}" if policy.list_published_version else "—"

    @admin.display(description=_("sync status"))
    def sync_panel(self, policy: QuotaPolicy) -> SafeString:
        if policy.pk is None:
            return gettext("Published when saved.")
        status = selectors.policy_sync_status(policy=policy)
        # The template autoescapes; the string it renders is the HTML to show.
        return mark_safe(render_to_string("admin/quotas/sync_status.html", {"status": status}))  # noqa: S308

    @admin.action(description=_("Make the selected policy the default"), permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, gettext("Select exactly one policy to make it the default."), messages.ERROR)
            return
        policy = queryset.get()
        services.policy_default_set(policy=policy)
        self.message_user(request, gettext("“%(name)s” is now the default policy.") % {"name": policy.name})

    @admin.action(description=_("Republish to the gateway store"), permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.policies_republish(policies=list(queryset))
        self.message_user(request, ngettext(
            "Queued %(count)s user policy for publishing.", "Queued %(count)s user policies for publishing.", count
        ) % {"count": count})


class AssignmentAdmin(admin.ModelAdmin):
    """An assignment of a policy to one `owner` (a group or a user): saving or deleting it
    republishes the owner, and the previous owner when the assignment moved."""

    owner: str

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        previous = form.initial.get(self.owner) if change else None
        super().save_model(request, obj, form, change)
        self._publish(owner_ids=[previous, getattr(obj, f"{self.owner}_id")])

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        owner_id = getattr(obj, f"{self.owner}_id")
        super().delete_model(request, obj)
        self._publish(owner_ids=[owner_id])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        owner_ids = list(queryset.values_list(f"{self.owner}_id", flat=True))
        super().delete_queryset(request, queryset)
        self._publish(owner_ids=owner_ids)

    def _publish(self, *, owner_ids: list[Any]) -> None:
        services.assignment_change_publish(**{f"{self.owner}_ids": owner_ids})


@admin.register(GroupPolicy)
class GroupPolicyAdmin(AssignmentAdmin):
    owner = "group"
    list_display = ("group", "policy")
    list_filter = ("policy",)
    search_fields = ("group__name", "policy__name")
    list_select_related = ("group", "policy")


@admin.register(UserPolicyOverride)
class UserPolicyOverrideAdmin(AssignmentAdmin):
    owner = "user"
    list_display = ("user", "policy", "reason")
    list_filter = ("policy",)
    search_fields = ("user__username", "user__email", "policy__name", "reason")
    autocomplete_fields = ("user",)
    list_select_related = ("user", "policy")


# -- groups (re-registered with their policy and allow-list) --------------------------------------
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    list_display = ("name", "quota_policy", "member_count")
    inlines = (GroupPolicyInline, GroupBudgetInline, GroupModelAccessByGroupInline)

    def get_readonly_fields(self, request, obj=None):
        # A group's permissions are the roles themselves: only a superuser changes them.
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "permissions")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the policy, budget and allow-list inlines
        services.assignment_change_publish(group_ids=[form.instance.pk])

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        services.group_delete(group=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for group in queryset:
            services.group_delete(group=group)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return groups_for_list(super().get_queryset(request))  # list columns without per-row queries

    @admin.display(description=_("quota policy"))
    def quota_policy(self, group: Group) -> str:
        assignment = getattr(group, "quota_policy_assignment", None)
        return assignment.policy.name if assignment else "—"

    @admin.display(description=_("members"), ordering="list_member_count")
    def member_count(self, group: Group) -> int:
        return int(getattr(group, "list_member_count", 0))  # annotated by groups_for_list


# -- users (accounts' admin plus governance) ------------------------------------------------------
admin.site.unregister(User)


@admin.register(User)
class GovernedUserAdmin(AccountsUserAdmin):
    inlines = (UserPolicyOverrideInline, UserModelAccessInline)
    readonly_fields = (*AccountsUserAdmin.readonly_fields, "governance_panel")  # type: ignore[assignment]  # stubs fix the base's tuple length
    list_display = (*AccountsUserAdmin.list_display, "effective_policy_name")
    actions = ("republish_selected", "reset_ten_minute_window", "reset_month_window")

    class Media:
        css = ADMIN_CSS

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # A new user needs a policy in the store before their first chat; a changed one may have
        # a new override, allow-list or active flag (an unchanged document queues nothing).
        services.policy_publish_request(users=[form.instance])

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        panel = (_("Gateway governance: effective policy and live usage"), {"fields": ("governance_panel",)})
        return (fieldsets[0], panel, *fieldsets[1:])

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type:
        return PolicyNamedChangeList

    @admin.display(description=_("policy"))
    def effective_policy_name(self, user: Any) -> str:
        # Resolved for the whole page by PolicyNamedChangeList; one by one elsewhere.
        name = getattr(user, "list_policy_name", None)
        if name is None:
            policy = selectors.policy_resolve(user=user)
            name = policy.name if policy else ""
        return name or "—"

    @admin.display(description=_("effective policy and live usage"))
    def governance_panel(self, user: Any) -> SafeString:
        context = governance_context(user=user)
        return mark_safe(render_to_string("admin/quotas/governance_panel.html", context))  # noqa: S308 - autoescaped

    @admin.action(description=_("Republish policy to the gateway store"), permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.policy_publish_request(users=queryset, force=True)
        self.message_user(request, ngettext(
            "Queued %(count)s policy for publishing.", "Queued %(count)s policies for publishing.", count
        ) % {"count": count})

    @admin.action(description=_("Reset current 10-minute window"), permissions=["reset_usage"])
    def reset_ten_minute_window(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._reset(request, queryset, window=TEN_MINUTE)

    @admin.action(description=_("Reset current month's usage"), permissions=["reset_usage"])
    def reset_month_window(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._reset(request, queryset, window=MONTH)

    def has_reset_usage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("quotas.reset_usage_window")

    def _reset(self, request: HttpRequest, queryset: QuerySet, *, window: str) -> None:
        try:
            keys = [services.usage_window_reset(user=user, window=window) for user in queryset]
        except StoreUnavailableError as error:
            self.message_user(request, _store_error_message(error), messages.ERROR)
            return
        text = (
            gettext("Reset the current 10-minute window (%(key)s) of %(count)s user(s).")
            if window == TEN_MINUTE
            else gettext("Reset the current month (%(key)s) of %(count)s user(s).")
        )
        self.message_user(request, text % {"key": keys[0] if keys else "—", "count": len(keys)})


class PolicyNamedChangeList(ChangeList):
    """The user list, with every listed user's effective policy resolved in one go."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        names = policy_names_for_users(self.result_list)
        for user in self.result_list:
            user.list_policy_name = names.get(user.pk, "")


def governance_context(*, user: Any) -> dict[str, Any]:
    """Everything the user page's governance panel shows; the store may be down."""
    policy, reason = selectors.policy_explain(user=user)
    effective = selectors.effective_policy_compute(user=user)
    context: dict[str, Any] = {
        "policy": policy,
        "reason": reason,
        "effective": effective,
        "resolution_rule": RESOLUTION_RULE,
        "sync": selectors.user_sync_status(user=user),
        "windows": [],
        "store_error": "",
    }
    try:
        usage = selectors.user_usage(user=user)
    except StoreUnavailableError as error:
        context["store_error"] = error.message
        return context
    for window in usage:
        percent = selectors.usage_percent(used=window.total, limit=window.limits.total)
        context["windows"].append(
            {
                "label": gettext(WINDOW_LABELS[window.kind].title),
                "usage": window,
                "percent": percent,
                "level": usage_level(used=window.total, limit=window.limits.total),
            }
        )
        if window.kind == MONTH:
            context["spend"] = selectors.user_spend_estimate(user=user, month_usage=window)
    return context


# -- prepared responses ---------------------------------------------------------------------------
@admin.register(PreparedResponse)
class PreparedResponseAdmin(admin.ModelAdmin):
    form = PreparedResponseAdminForm
    list_display = ("short_question", "scope", "enabled", "expires_at", "store_status", "updated_at")
    list_filter = ("enabled", ("model", admin.RelatedOnlyFieldListFilter))
    search_fields = ("question", "answer")
    autocomplete_fields = ("model",)
    fields = ("question", "answer", "model", "enabled", "expires_at")
    actions = ("purge_from_store", "republish_selected")

    class Media:
        css = ADMIN_CSS

    def save_model(self, request: HttpRequest, obj: PreparedResponse, form: Any, change: bool) -> None:
        services.prepared_save(prepared=obj)

    def delete_model(self, request: HttpRequest, obj: PreparedResponse) -> None:
        services.prepared_delete(prepared=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for prepared in queryset.select_related("model"):
            services.prepared_delete(prepared=prepared)

    @admin.display(description=_("question"))
    def short_question(self, prepared: PreparedResponse) -> str:
        return Truncator(prepared.question).chars(80)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return prepared_for_list(super().get_queryset(request))  # list columns without per-row queries

    @admin.display(description=_("model"))
    def scope(self, prepared: PreparedResponse) -> str:
        return prepared.model.display_name if prepared.model else gettext("every model")

    @admin.display(description=_("in store"))
    def store_status(self, prepared: PreparedResponse) -> str:
        status, action = prepared.list_outbox_status, prepared.list_outbox_action
        if status is None:
            return "—"
        if status == OutboxStatus.PENDING:
            return gettext("pending")
        action_label = PreparedOutbox.Action(action).label if action in PreparedOutbox.Action.values else action
        return f"{str(action_label).lower()} {str(OutboxStatus(status).label).lower()}"

    @admin.action(description=_("Purge from the gateway store (and disable)"), permissions=["change"])
    def purge_from_store(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for prepared in queryset:
            services.prepared_purge(prepared=prepared)
            count += 1
        self.message_user(
            request,
            gettext("Disabled %(count)s prepared response(s); their deletion from the store is queued.")
            % {"count": count},
        )

    @admin.action(description=_("Republish to the gateway store"), permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for prepared in queryset.select_related("model"):
            services.prepared_publish_request(prepared=prepared)
            count += 1
        self.message_user(request, gettext("Queued %(count)s prepared response(s) for publishing.") % {"count": count})


# -- outboxes (read-only: rows are written by services) ------------------------------------------
class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_drain_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("quotas.change_policyoutbox")

    @admin.action(description=_("Publish pending rows now"), permissions=["drain"])
    def drain_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            result = services.outbox_drain()
        except StoreUnavailableError as error:
            text = _store_error_message(error) + " " + gettext("Rows stay pending.")
            self.message_user(request, text, messages.ERROR)
            return
        self.message_user(request, gettext("Published: %(result)s") % {"result": result.as_dict()})


@admin.register(PolicyOutbox)
class PolicyOutboxAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "sub",
        "user",
        "policy",
        "version",
        "status",
        "result",
        "attempts",
        "created_at",
        "published_at",
        "error",
    )
    list_filter = ("status", "result")
    search_fields = ("sub", "user__username")
    list_select_related = ("user", "policy")
    actions = ("drain_now", "retry_failed")

    @admin.display(description=_("last error"))
    def error(self, row: PolicyOutbox) -> str:
        return row.last_error[:120]

    @admin.action(description=_("Retry failed rows (republish their users)"), permissions=["drain"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.outbox_failed_retry(rows=queryset)
        self.message_user(request, ngettext(
            "Queued %(count)s policy for publishing.", "Queued %(count)s policies for publishing.", count
        ) % {"count": count})


@admin.register(PreparedOutbox)
class PreparedOutboxAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "action",
        "question_key",
        "model_id",
        "status",
        "attempts",
        "created_at",
        "published_at",
        "last_error",
    )
    list_filter = ("status", "action")
    actions = ("drain_now",)

    def has_drain_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("quotas.change_preparedoutbox")


# -- live usage (a custom admin page) --------------------------------------------------------------
def live_usage_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("quotas.view_live_usage"):
        raise PermissionDenied
    if request.method == "POST":
        return _purge_cache(request)
    context = {
        **admin.site.each_context(request),
        "title": gettext("Live usage"),
        "can_purge": request.user.has_perm("quotas.purge_answer_cache"),
        "pending": selectors.outbox_pending_count(),
        "live": None,
        "store_error": "",
    }
    try:
        context["live"] = selectors.live_usage_top()
    except StoreUnavailableError as error:
        context["store_error"] = error.message
    return TemplateResponse(request, "admin/quotas/live_usage.html", context)


def _purge_cache(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("quotas.purge_answer_cache"):
        raise PermissionDenied
    try:
        purged = services.answer_cache_purge()
    except StoreUnavailableError as error:
        messages.error(request, _store_error_message(error))
    else:
        text = gettext("Purged %(count)s cached answer(s). Prepared responses are kept.")
        messages.success(request, text % {"count": purged})
    return HttpResponseRedirect(reverse("admin:quotas_live_usage"))



@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    """What was alerted, read-only: alerts are written by the budget check, never by hand."""

    list_display = ("user", "group", "month", "threshold", "cost_usd", "budget_usd", "created_at")
    list_filter = ("month", "threshold")
    search_fields = ("user__username", "user__email", "group__name")
    list_select_related = ("user", "group")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False
