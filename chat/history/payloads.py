"""What the history API accepts: JSON bodies checked field by field, each problem answered
with a typed error a person can act on (the page shows `message` as it is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from chat.models import MessageRole, MessageSource

MAX_BODY_BYTES = 512 * 1024
MAX_TITLE_CHARS = 200
MAX_MESSAGE_CHARS = 200_000
MAX_MESSAGES_PER_APPEND = 20
MAX_MESSAGES_PER_CONVERSATION = 1_000
MAX_TOKENS_FIGURE = 10_000_000
STOP_REASONS = {
    "",
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "cancelled",
    "guardrail_intervened",
    "content_filtered",
    "error",
}


class HistoryError(Exception):
    """A request the history API refuses: HTTP status, a stable type, and words for a person."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def as_body(self) -> dict[str, Any]:
        return {"errors": [{"errorType": self.error_type, "message": self.message}]}


def bad_request(message: str) -> HistoryError:
    return HistoryError(400, "BadRequest", message)


@dataclass(frozen=True)
class MessageInput:
    role: str
    content: str
    model_id: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    source: str = MessageSource.MODEL
    stop_reason: str = ""


@dataclass(frozen=True)
class ConversationInput:
    title: str
    model_id: str
    private: bool
    messages: tuple[MessageInput, ...]


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(_("The body must be a JSON object."))
    return body


def _allowed_keys(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(_("Unknown field: %(field)s.") % {"field": unknown[0]})


def title_parse(value: Any, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(_("Give the conversation a title (some text)."))
    title = " ".join(value.split())
    if len(title) > MAX_TITLE_CHARS:
        raise bad_request(_("A title is at most %(count)s characters.") % {"count": MAX_TITLE_CHARS})
    return title


def _text(value: Any, field: str, *, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(_("%(field)s must be text.") % {"field": field})
    if len(value) > limit:
        raise HistoryError(
            413,
            "TooLarge",
            _("%(field)s is too long (at most %(count)s characters).") % {"field": field, "count": limit},
        )
    return value


def _tokens(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS_FIGURE:
        raise bad_request(_("%(field)s must be a whole number of tokens, 0 or more.") % {"field": field})
    return value


def _choice(value: Any, field: str, choices: set[str], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise bad_request(
            _("%(field)s must be one of: %(choices)s.")
            % {"field": field, "choices": ", ".join(sorted(c for c in choices if c))}
        )
    return value


def message_parse(value: Any) -> MessageInput:
    item = _object(value)
    _allowed_keys(item, {"role", "content", "modelId", "inputTokens", "outputTokens", "source", "stopReason"})
    return MessageInput(
        role=_choice(item.get("role"), "role", set(MessageRole.values), ""),
        content=_text(item.get("content"), "content", limit=MAX_MESSAGE_CHARS),
        model_id=_text(item.get("modelId"), "modelId", limit=255),
        input_tokens=_tokens(item.get("inputTokens"), "inputTokens"),
        output_tokens=_tokens(item.get("outputTokens"), "outputTokens"),
        source=_choice(item.get("source"), "source", set(MessageSource.values), MessageSource.MODEL),
        stop_reason=_choice(item.get("stopReason"), "stopReason", STOP_REASONS, ""),
    )


def messages_parse(value: Any, *, required: bool) -> tuple[MessageInput, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise bad_request(
            _('messages must be a list of messages, each {"role": "user" or "assistant", "content": text}.')
        )
    if len(value) > MAX_MESSAGES_PER_APPEND:
        raise HistoryError(
            413, "TooLarge", _("Send at most %(count)s messages at a time.") % {"count": MAX_MESSAGES_PER_APPEND}
        )
    messages = tuple(message_parse(item) for item in value)
    if messages and messages[0].role != MessageRole.USER:
        raise bad_request(_("A turn starts with the user's message."))
    return messages


def private_parse(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(_("private must be true or false."))
    return value


def conversation_parse(body: Any) -> ConversationInput:
    body = _object(body)
    _allowed_keys(body, {"title", "modelId", "private", "messages"})
    messages = messages_parse(body.get("messages"), required=False)
    title = title_parse(body.get("title"), required=not messages)
    if not title:
        title = " ".join(messages[0].content.split())[:60] or _("New conversation")
    return ConversationInput(
        title=title,
        model_id=_text(body.get("modelId"), "modelId", limit=255),
        private=private_parse(body.get("private")),
        messages=messages,
    )


def turn_parse(body: Any) -> tuple[tuple[MessageInput, ...], bool, int | None]:
    """The turn's messages, its private flag, and `keep`: how many earlier messages stay (a
    regenerated answer or an edited question replaces what followed; absent: all stay)."""
    body = _object(body)
    _allowed_keys(body, {"messages", "private", "keep"})
    keep = body.get("keep")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise bad_request(_("keep must be a whole number of messages, 0 or more."))
    return messages_parse(body.get("messages"), required=True), private_parse(body.get("private")), keep


def rename_parse(body: Any) -> str:
    body = _object(body)
    _allowed_keys(body, {"title"})
    return title_parse(body.get("title"), required=True)
