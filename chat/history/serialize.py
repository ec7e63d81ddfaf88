"""Conversations as the API and the exports show them to their owner."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _

from chat.models import Conversation, Message, MessageSource

EXPORT_FORMAT_VERSION = 1


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    summary = {
        "id": str(conversation.id),
        "title": conversation.title,
        "modelId": conversation.model_id,
        "private": conversation.private,
        "createdAt": conversation.created_at.isoformat(),
        "updatedAt": conversation.updated_at.isoformat(),
    }
    count = getattr(conversation, "message_count", None)
    if count is not None:
        summary["messageCount"] = count
    return summary


def message_wire(message: Message) -> dict[str, Any]:
    return message_row_wire(
        {
            "id": message.pk,
            "role": message.role,
            "content": message.content,
            "model_id": message.model_id,
            "input_tokens": message.input_tokens,
            "output_tokens": message.output_tokens,
            "source": message.source,
            "stop_reason": message.stop_reason,
            "created_at": message.created_at,
        }
    )


def message_row_wire(row: dict[str, Any]) -> dict[str, Any]:
    """A message from its database row (`selectors.MESSAGE_EXPORT_FIELDS`), as the API shows it."""
    return {
        "id": row["id"],
        "role": row["role"],
        "content": row["content"],
        "modelId": row["model_id"],
        "inputTokens": row["input_tokens"],
        "outputTokens": row["output_tokens"],
        "source": row["source"],
        "stopReason": row["stop_reason"],
        "createdAt": row["created_at"].isoformat(),
    }


def conversation_detail(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {**conversation_summary(conversation), "messages": [message_wire(message) for message in messages]}


def export_json(conversations: list[dict[str, Any]], *, indent: int | None = 2) -> str:
    """The export document. A whole history is written without indentation: json's fast
    encoder only runs without it (several times faster on thousands of messages)."""
    return json.dumps(
        {"format": "ai-gateway-conversations", "version": EXPORT_FORMAT_VERSION, "conversations": conversations},
        ensure_ascii=False,
        indent=indent,
    )


def _source_label(message: Message) -> str:
    if message.source == MessageSource.CACHE:
        return _("from the answer cache")
    if message.source == MessageSource.PREPARED:
        return _("a prepared answer")
    return message.model_id


def export_markdown(conversation: Conversation, messages: list[Message]) -> str:
    lines = [f"# {conversation.title}", ""]
    lines.append(
        _("Exported from AI Gateway. Started %(created)s, last message %(updated)s.")
        % {
            "created": conversation.created_at.isoformat(timespec="minutes"),
            "updated": conversation.updated_at.isoformat(timespec="minutes"),
        }
    )
    for message in messages:
        if message.role == "user":
            heading = _("You")
        else:
            label = _source_label(message)
            heading = _("Assistant") + (f" ({label})" if label else "")
        lines += ["", f"## {heading}", "", message.content]
    return "\n".join(lines).rstrip() + "\n"


def export_filename(conversation: Conversation, extension: str) -> str:
    return f"conversation-{conversation.created_at:%Y%m%d}-{str(conversation.id)[:8]}.{extension}"
