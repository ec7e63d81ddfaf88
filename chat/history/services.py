"""Writes to conversation history: create, rename, delete, append, and the two purges
(private conversations at sign-out, expired ones every day)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from chat.history.payloads import MAX_MESSAGES_PER_CONVERSATION, HistoryError, MessageInput
from chat.history.retention import PRIVATE_LEFTOVER_HOURS, retention_for
from chat.models import Conversation, Message
from quotas.selectors import policy_resolve

logger = logging.getLogger(__name__)
CONVERSATION_LABEL = "chat.Conversation"  # how QuerySet.delete() names it in its per-model counts


def history_kept_check(*, user: Any) -> None:
    if not retention_for(user=user).kept:
        raise HistoryError(403, "HistoryNotKept", _("Your policy does not keep chat history, so nothing was saved."))


@transaction.atomic
def conversation_create(
    *, user: Any, title: str, model_id: str = "", private: bool = False, messages: Iterable[MessageInput] = ()
) -> Conversation:
    history_kept_check(user=user)
    conversation = Conversation.objects.create(owner=user, title=title, model_id=model_id, private=private)
    for message in messages:
        message_append(conversation=conversation, message=message)
    return conversation


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title
    conversation.save(update_fields=["title", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def message_append(*, conversation: Conversation, message: MessageInput) -> Message:
    return Message.objects.create(
        conversation=conversation,
        role=message.role,
        content=message.content,
        model_id=message.model_id,
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        source=message.source,
        stop_reason=message.stop_reason,
    )


@transaction.atomic
def turn_append(
    *, conversation: Conversation, messages: tuple[MessageInput, ...], private: bool = False, keep: int | None = None
) -> list[Message]:
    """One exchange (the question and its answer) added to a conversation; with `keep`, only
    the first `keep` messages stay before it (a regenerated answer or an edited question
    replaces the exchanges that followed).

    A private turn makes the whole conversation private, for good: the earlier turns are
    context the private one was sent with.
    """
    history_kept_check(user=conversation.owner)
    # Lock the row so two tabs appending at once cannot both slip under the cap.
    locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if keep is not None:
        dropped = locked.messages.order_by("created_at", "id").values_list("pk", flat=True)[keep:]
        Message.objects.filter(pk__in=list(dropped)).delete()
    if locked.messages.count() + len(messages) > MAX_MESSAGES_PER_CONVERSATION:
        raise HistoryError(
            413,
            "TooLarge",
            _("This conversation is full (%(count)s messages). Start a new conversation.")
            % {"count": MAX_MESSAGES_PER_CONVERSATION},
        )
    stored = [message_append(conversation=locked, message=message) for message in messages]
    model_ids = [message.model_id for message in messages if message.model_id]
    if model_ids:
        locked.model_id = model_ids[-1]
    locked.private = locked.private or private
    locked.save(update_fields=["model_id", "private", "updated_at"])
    conversation.refresh_from_db()
    return stored


def conversations_private_delete(*, user: Any) -> int:
    """At sign-out: private conversations do not outlive the session they were held in."""
    _total, per_model = Conversation.objects.filter(owner=user, private=True).delete()
    return per_model.get(CONVERSATION_LABEL, 0)


def history_expired_purge(*, now: datetime | None = None) -> int:
    """Delete conversations past their owner's retention, and private ones left behind by
    sessions that expired without a sign-out. One delete per retention period, not per user."""
    now = now or timezone.now()
    owners_by_days: dict[int, list[int]] = defaultdict(list)
    owner_ids = Conversation.objects.values_list("owner_id", flat=True).distinct()
    for owner in User.objects.filter(pk__in=owner_ids):
        policy = policy_resolve(user=owner)
        # No policy at all is a misconfiguration, not a decision to delete: those wait.
        if policy is not None and policy.history_retention_days is not None:
            owners_by_days[policy.history_retention_days].append(owner.pk)
    expired = Q(private=True, updated_at__lt=now - timedelta(hours=PRIVATE_LEFTOVER_HOURS))
    for days, owners in owners_by_days.items():
        expired |= Q(owner_id__in=owners, updated_at__lt=now - timedelta(days=days))
    _total, per_model = Conversation.objects.filter(expired).delete()
    count = per_model.get(CONVERSATION_LABEL, 0)
    logger.info("history purge deleted %s conversation(s)", count)
    return count
