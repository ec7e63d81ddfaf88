"""The governance admin: catalogue, allow-lists, policies, assignments, prepared answers, sync.

Admin classes only arrange what a person sees; every change goes through `quotas.services`
(directly in actions, or through the model signals for ordinary saves).
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext

from accounts.admin import UserAdmin as AccountsUserAdmin
from dataplane.errors import StoreUnavailableError
from quotas import selectors, services
from quotas.models import (
    RESOLUTION_RULE,
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
    return f"The gateway store is unavailable ({error.message}). Nothing was changed in the store."


# -- inlines ------------------------------------------------------------------------------------
class GroupModelAccessByGroupInline(admin.TabularInline):
    model = GroupModelAccess
    fk_name = "group"
    extra = 0
    autocomplete_fields = ("model",)
    verbose_name = "allowed model"
    verbose_name_plural = "Allowed models (members may use these)"


class GroupModelAccessByModelInline(admin.TabularInline):
    model = GroupModelAccess
    fk_name = "model"
    extra = 0
    verbose_name = "group allowed to use this model"
    verbose_name_plural = "Groups allowed to use this model"


class GroupPolicyInline(admin.StackedInline):
    model = GroupPolicy
    extra = 0
    max_num = 1
    can_delete = True
    verbose_name = "quota policy of this group"
    verbose_name_plural = "Quota policy of this group"


class UserPolicyOverrideInline(admin.StackedInline):
    model = UserPolicyOverride
    extra = 0
    max_num = 1
    verbose_name = "policy override"
    verbose_name_plural = "Policy override (wins over group and default policies)"


class UserModelAccessInline(admin.TabularInline):
    model = UserModelAccess
    extra = 0
    autocomplete_fields = ("model",)
    verbose_name = "allowed model"
    verbose_name_plural = "Allowed models (in addition to the user's groups and models open to all)"


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
        ("Availability", {"fields": ("enabled", "available_to_all")}),
        ("Requests and prices", {"fields": ("default_max_tokens", "price_in_per_1k", "price_out_per_1k")}),
    )
    actions = ("enable_selected", "disable_selected")

    class Media:
        css = ADMIN_CSS

    @admin.action(description="Enable selected models", permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = services.catalogue_enabled_set(entries=queryset, enabled=True)
        self.message_user(request, f"Enabled {changed} model(s); every user's policy is being republished.")

    @admin.action(description="Disable selected models", permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        changed = services.catalogue_enabled_set(entries=queryset, enabled=False)
        self.message_user(request, f"Disabled {changed} model(s); every user's policy is being republished.")


# -- quota policies -------------------------------------------------------------------------------
@admin.register(QuotaPolicy)
class QuotaPolicyAdmin(admin.ModelAdmin):
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
        (None, {"fields": ("name", "description", "is_default"), "description": RESOLUTION_RULE}),
        ("10-minute window", {"fields": ("ten_minute_total", "ten_minute_input", "ten_minute_output")}),
        ("Calendar month", {"fields": ("monthly_total", "monthly_input", "monthly_output", "monthly_budget_usd")}),
        ("Requests and privacy", {"fields": ("max_tokens_cap", "never_cache", "cache_scope", "log_prompts")}),
        (
            "Bedrock guardrail",
            {"fields": ("guardrail", "guardrail_identifier", "guardrail_version", "guardrail_stream_mode")},
        ),
        ("Sync to the gateway store", {"fields": ("sync_panel",)}),
    )
    actions = ("make_default", "republish_selected")

    class Media:
        css = ADMIN_CSS

    def has_delete_permission(self, request: HttpRequest, obj: QuotaPolicy | None = None) -> bool:
        if obj is not None and obj.is_default:
            return False  # there must always be a default policy
        return super().has_delete_permission(request, obj)

    @admin.display(description="assigned to")
    def assigned_to(self, policy: QuotaPolicy) -> str:
        if policy.is_default:
            return "everyone else (default)"
        groups = policy.group_assignments.count()
        users = policy.user_overrides.count()
        return f"{groups} group(s), {users} user override(s)"

    @admin.display(description="sync")
    def sync_summary(self, policy: QuotaPolicy) -> str:
        status = selectors.policy_sync_status(policy=policy)
        if status.failed:
            return f"{status.failed} failed"
        if status.pending:
            return f"{status.pending} pending"
        return f"v{status.published_version}" if status.published_version else "—"

    @admin.display(description="sync status")
    def sync_panel(self, policy: QuotaPolicy) -> SafeString:
        if policy.pk is None:
            return mark_safe("Published when saved.")
        status = selectors.policy_sync_status(policy=policy)
        # The template autoescapes; the string it renders is the HTML to show.
        return mark_safe(render_to_string("admin/quotas/sync_status.html", {"status": status}))  # noqa: S308

    @admin.action(description="Make the selected policy the default", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one policy to make it the default.", messages.ERROR)
            return
        policy = queryset.get()
        services.policy_default_set(policy=policy)
        self.message_user(request, f"“{policy.name}” is now the default policy.")

    @admin.action(description="Republish to the gateway store", permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.policies_republish(policies=list(queryset))
        self.message_user(request, f"Queued {count} user polic{'y' if count == 1 else 'ies'} for publishing.")


@admin.register(GroupPolicy)
class GroupPolicyAdmin(admin.ModelAdmin):
    list_display = ("group", "policy")
    list_filter = ("policy",)
    search_fields = ("group__name", "policy__name")
    list_select_related = ("group", "policy")


@admin.register(UserPolicyOverride)
class UserPolicyOverrideAdmin(admin.ModelAdmin):
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
    inlines = (GroupPolicyInline, GroupModelAccessByGroupInline)

    def get_readonly_fields(self, request, obj=None):
        # A group's permissions are the roles themselves: only a superuser changes them.
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, "permissions")

    @admin.display(description="quota policy")
    def quota_policy(self, group: Group) -> str:
        assignment = GroupPolicy.objects.filter(group=group).select_related("policy").first()
        return assignment.policy.name if assignment else "—"

    @admin.display(description="members")
    def member_count(self, group: Group) -> int:
        return group.user_set.count()


# -- users (accounts' admin plus governance) ------------------------------------------------------
admin.site.unregister(User)


@admin.register(User)
class GovernedUserAdmin(AccountsUserAdmin):
    inlines = (UserPolicyOverrideInline, UserModelAccessInline)
    readonly_fields = (*AccountsUserAdmin.readonly_fields, "governance_panel")
    list_display = (*AccountsUserAdmin.list_display, "effective_policy_name")
    actions = ("republish_selected", "reset_ten_minute_window", "reset_month_window")

    class Media:
        css = ADMIN_CSS

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        panel = ("Gateway governance: effective policy and live usage", {"fields": ("governance_panel",)})
        return (fieldsets[0], panel, *fieldsets[1:])

    @admin.display(description="policy")
    def effective_policy_name(self, user: Any) -> str:
        policy = selectors.policy_resolve(user=user)
        return policy.name if policy else "—"

    @admin.display(description="effective policy and live usage")
    def governance_panel(self, user: Any) -> SafeString:
        context = governance_context(user=user)
        return mark_safe(render_to_string("admin/quotas/governance_panel.html", context))  # noqa: S308 - autoescaped

    @admin.action(description="Republish policy to the gateway store", permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.policy_publish_request(users=queryset, force=True)
        self.message_user(request, f"Queued {count} polic{'y' if count == 1 else 'ies'} for publishing.")

    @admin.action(description="Reset current 10-minute window", permissions=["reset_usage"])
    def reset_ten_minute_window(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._reset(request, queryset, window="10m")

    @admin.action(description="Reset current month's usage", permissions=["reset_usage"])
    def reset_month_window(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._reset(request, queryset, window="month")

    def has_reset_usage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("quotas.reset_usage_window")

    def _reset(self, request: HttpRequest, queryset: QuerySet, *, window: str) -> None:
        try:
            keys = [services.usage_window_reset(user=user, window=window) for user in queryset]
        except StoreUnavailableError as error:
            self.message_user(request, _store_error_message(error), messages.ERROR)
            return
        label = "10-minute window" if window == "10m" else "month"
        self.message_user(request, f"Reset the current {label} ({keys[0] if keys else '—'}) of {len(keys)} user(s).")


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
                "label": "10-minute window" if window.kind == "10m" else "This month",
                "usage": window,
                "percent": percent,
                "level": _level(percent),
            }
        )
        if window.kind == "month":
            context["spend"] = selectors.user_spend_estimate(user=user, month_usage=window)
    return context


_WARNING_PERCENT, _DANGER_PERCENT = 75, 90


def _level(percent: int | None) -> str:
    if percent is None:
        return "unlimited"
    if percent >= _DANGER_PERCENT:
        return "danger"
    if percent >= _WARNING_PERCENT:
        return "warning"
    return "ok"


# -- prepared responses ---------------------------------------------------------------------------
@admin.register(PreparedResponse)
class PreparedResponseAdmin(admin.ModelAdmin):
    list_display = ("short_question", "scope", "enabled", "expires_at", "store_status", "updated_at")
    list_filter = ("enabled", ("model", admin.RelatedOnlyFieldListFilter))
    search_fields = ("question", "answer")
    autocomplete_fields = ("model",)
    fields = ("question", "answer", "model", "enabled", "expires_at")
    actions = ("purge_from_store", "republish_selected")

    class Media:
        css = ADMIN_CSS

    @admin.display(description="question")
    def short_question(self, prepared: PreparedResponse) -> str:
        return Truncator(prepared.question).chars(80)

    @admin.display(description="model")
    def scope(self, prepared: PreparedResponse) -> str:
        return prepared.model.display_name if prepared.model else "every model"

    @admin.display(description="in store")
    def store_status(self, prepared: PreparedResponse) -> str:
        last = prepared.outbox.order_by("-id").first()
        if last is None:
            return "—"
        if last.status == OutboxStatus.PENDING:
            return "pending"
        return f"{last.get_action_display().lower()} {last.get_status_display().lower()}"

    @admin.action(description="Purge from the gateway store (and disable)", permissions=["change"])
    def purge_from_store(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for prepared in queryset:
            services.prepared_purge(prepared=prepared)
            count += 1
        self.message_user(request, f"Disabled {count} prepared response(s); their deletion from the store is queued.")

    @admin.action(description="Republish to the gateway store", permissions=["change"])
    def republish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for prepared in queryset.select_related("model"):
            services.prepared_publish_request(prepared=prepared)
            count += 1
        self.message_user(request, f"Queued {count} prepared response(s) for publishing.")


# -- outboxes (read-only: rows are written by services) ------------------------------------------
class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_drain_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("quotas.change_policyoutbox")

    @admin.action(description="Publish pending rows now", permissions=["drain"])
    def drain_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            result = services.outbox_drain()
        except StoreUnavailableError as error:
            self.message_user(request, _store_error_message(error) + " Rows stay pending.", messages.ERROR)
            return
        self.message_user(request, f"Published: {result.as_dict()}")


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

    @admin.display(description="last error")
    def error(self, row: PolicyOutbox) -> str:
        return row.last_error[:120]

    @admin.action(description="Retry failed rows (republish their users)", permissions=["drain"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = services.outbox_failed_retry(rows=queryset)
        self.message_user(request, f"Queued {count} polic{'y' if count == 1 else 'ies'} for publishing.")


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
        messages.success(request, f"Purged {purged} cached answer(s). Prepared responses are kept.")
    return HttpResponseRedirect(reverse("admin:quotas_live_usage"))


_admin_urls = admin.site.get_urls


def _get_urls() -> list:
    # The admin site offers no hook for an extra page; prepending ours keeps it under /admin/
    # with the admin's login, CSRF and "staff only" checks (admin_view).
    return [
        path("quotas/live-usage/", admin.site.admin_view(live_usage_view), name="quotas_live_usage"),
        *_admin_urls(),
    ]


admin.site.get_urls = _get_urls  # type: ignore[method-assign]  # see _get_urls
