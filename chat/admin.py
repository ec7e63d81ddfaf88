"""Chat history in the admin: how many conversations and messages each user keeps and when
they last chatted. Never a title, never a message, never a private conversation."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from chat.models import HistoryOwner

SHARED = Q(conversations__private=False)


@admin.register(HistoryOwner)
class HistoryOwnerAdmin(admin.ModelAdmin):
    list_display = ("username", "conversation_count", "message_count", "last_activity")
    search_fields = ("username",)
    # Counts are all there is to see: no detail page, no actions, nothing to edit.
    list_display_links = None
    actions = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                conversations_kept=Count("conversations", filter=SHARED, distinct=True),
                messages_kept=Count("conversations__messages", filter=SHARED),
                last_activity_at=Max("conversations__updated_at", filter=SHARED),
            )
            .filter(conversations_kept__gt=0)
            .order_by("-last_activity_at")
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list only: a user's own page would show their account, which is not this admin's to show.
        return obj is None and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("conversations"), ordering="conversations_kept")
    def conversation_count(self, owner: Any) -> int:
        return owner.conversations_kept

    @admin.display(description=_("messages"), ordering="messages_kept")
    def message_count(self, owner: Any) -> int:
        return owner.messages_kept

    @admin.display(description=_("last activity"), ordering="last_activity_at")
    def last_activity(self, owner: Any) -> Any:
        return owner.last_activity_at
