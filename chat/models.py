"""Conversation history kept on the server: a user's conversations and their messages.

Content is the user's own: admins see counts and dates (`chat.admin`), never titles or text.
How long a conversation is kept comes from the user's quota policy
(`QuotaPolicy.history_retention_days`); private conversations go at sign-out.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import User


class Conversation(models.Model):
    # Set on a page of the list by `chat.history.selectors` (one count query for the page).
    message_count: int
    # A random public id: the page and the API never see (or guess) sequential keys.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations", verbose_name=_("owner")
    )
    title = models.CharField(_("title"), max_length=200)
    model_id = models.CharField(_("model id"), max_length=255, blank=True)
    private = models.BooleanField(
        _("private"), default=False, help_text=_("Never cached, hidden from admins, deleted at sign-out.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("last activity"), auto_now=True, db_index=True)

    class Meta:
        ordering = ("-updated_at",)
        indexes = [models.Index(fields=["owner", "-updated_at"], name="chat_conversation_owner_recent")]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return str(self.id)  # never the title: it is the user's content


class MessageRole(models.TextChoices):
    USER = "user", _("user")
    ASSISTANT = "assistant", _("assistant")


class MessageSource(models.TextChoices):
    MODEL = "model", _("the model")
    CACHE = "cache", _("the answer cache")
    PREPARED = "prepared", _("a prepared answer")


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.TextField(blank=True)
    model_id = models.CharField(max_length=255, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=MessageSource.choices, default=MessageSource.MODEL)
    # Why an answer ended (end_turn, max_tokens, cancelled, guardrail_intervened): the page
    # words it again when the conversation is opened later.
    stop_reason = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"


class HistoryOwner(User):
    """A user seen from the history admin: counts and last activity, never content."""

    class Meta:
        proxy = True
        verbose_name = _("conversation history (counts only)")
        verbose_name_plural = _("conversation history (counts only)")
