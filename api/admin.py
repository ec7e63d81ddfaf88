"""Admins see every key's owner, state, scope and usage, and revoke keys; nobody sees a
secret, and keys are only created by their owner (an admin-made key would let the admin act
as the user)."""
from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from api.models import ApiKey
from api.services import api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = (
        "prefix", "name", "user", "key_state", "created_at", "expires_at", "last_used_at", "request_count",
        "input_tokens", "output_tokens",
    )
    list_filter = ("revoked_at", "expires_at", "created_at")
    search_fields = ("prefix", "name", "user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = (
        "user", "prefix", "created_at", "revoked_at", "last_used_at", "request_count", "input_tokens", "output_tokens",
    )
    fields = ("user", "name", "prefix", "allowed_models", "expires_at", *readonly_fields[2:])
    filter_horizontal = ("allowed_models",)
    actions = ("revoke_keys",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("state"))
    def key_state(self, key: ApiKey) -> str:
        return str({"active": _("active"), "revoked": _("revoked"), "expired": _("expired")}[key.state()])

    @admin.action(description=_("Revoke the selected keys"), permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(key=key)
        self.message_user(
            request, ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", len(keys)) % {"count": len(keys)}
        )
