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
    rows = list(conversations.order_by("-updated_at", "-created_at")[start : start + page_size])
    # Counted for this page's rows only: annotating the whole history would count every
    # conversation's messages to show twenty.
    counts = dict(
        Message.objects.filter(conversation__in=[row.pk for row in rows])
        .values_list("conversation")
        .annotate(count=Count("id"))
        .values_list("conversation", "count")
    )
    for row in rows:
        row.message_count = counts.get(row.pk, 0)
    return ConversationPage(conversations=rows, number=page, size=page_size, total=total)


MESSAGE_EXPORT_FIELDS = (
    "conversation_id",
    "id",
    "role",
    "content",
    "model_id",
    "input_tokens",
    "output_tokens",
    "source",
    "stop_reason",
    "created_at",
)


def conversations_export_all(*, user: Any) -> list[tuple[Conversation, list[dict[str, Any]]]]:
    """Every visible conversation with its messages as plain rows (in order): a long history
    exports without building a model instance per message."""
    conversations = list(conversations_visible(user=user).order_by("-updated_at"))
    messages: dict[Any, list[dict[str, Any]]] = {conversation.pk: [] for conversation in conversations}
    rows = (
        Message.objects.filter(conversation__in=conversations_visible(user=user))
        .order_by("conversation_id", "created_at", "id")
        .values(*MESSAGE_EXPORT_FIELDS)
    )
    for row in rows.iterator(chunk_size=2_000):
        if row["conversation_id"] in messages:
            messages[row["conversation_id"]].append(row)
    return [(conversation, messages[conversation.pk]) for conversation in conversations]
