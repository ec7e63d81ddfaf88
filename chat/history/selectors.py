"""Reads of a user's own conversations. Every read starts from the owner: nobody reaches
another user's conversation, and an expired one is gone even before the daily purge runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from chat.history.retention import retention_for
from chat.models import Conversation, Message

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def conversations_visible(*, user: Any) -> QuerySet[Conversation]:
    conversations = Conversation.objects.filter(owner=user)
    cutoff = retention_for(user=user).cutoff()
    if cutoff is not None:
        conversations = conversations.filter(updated_at__gte=cutoff)
    return conversations


def conversation_get(*, user: Any, conversation_id: str) -> Conversation | None:
    """The user's conversation with this id, or None (also for another user's: same answer)."""
    try:
        key = uuid.UUID(str(conversation_id))
    except ValueError:
        return None
    return conversations_visible(user=user).filter(pk=key).first()


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.order_by("created_at", "id")


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    number: int
    size: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.number * self.size < self.total


def conversation_list(*, user: Any, query: str = "", page: int = 1, page_size: int = PAGE_SIZE) -> ConversationPage:
    """Newest activity first; `query` matches the title or any message's text (case-insensitive)."""
    conversations = conversations_visible(user=user)
    query = query.strip()
    if query:
        matching = Message.objects.filter(content__icontains=query).values("conversation_id")
        conversations = conversations.filter(Q(title__icontains=query) | Q(pk__in=matching))
    total = conversations.count()
    start = (page - 1) * page_size
    rows = list(
        conversations.annotate(message_count=Count("messages")).order_by("-updated_at", "-created_at")[
            start : start + page_size
        ]
    )
    return ConversationPage(conversations=rows, number=page, size=page_size, total=total)


def conversations_export_all(*, user: Any) -> list[Conversation]:
    return list(conversations_visible(user=user).prefetch_related("messages").order_by("-updated_at"))
