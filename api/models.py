"""Personal API keys: how scripts, IDE plugins and agents reach the OpenAI-compatible door.

A key acts as its user (same policy, same quota windows). Only a SHA-256 of the key is kept:
keys are 256-bit random, so a fast hash is as good as a slow one against guessing, and it lets
a request find its key with one indexed lookup. The prefix stays visible so people can tell
their keys apart.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=80, help_text=_("What the key is for, e.g. “laptop script”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    allowed_models = models.ManyToManyField(
        "quotas.ModelCatalogueEntry",
        blank=True,
        related_name="api_keys",
        verbose_name=_("models"),
        help_text=_(
            "Empty: every model the user may use. Otherwise only these (and only while the user may use them)."
        ),
    )
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, help_text=_("Empty: never expires."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    request_count = models.PositiveBigIntegerField(_("requests"), default=0, editable=False)
    input_tokens = models.PositiveBigIntegerField(_("input tokens"), default=0, editable=False)
    output_tokens = models.PositiveBigIntegerField(_("output tokens"), default=0, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def state(self, now: datetime | None = None) -> str:
        """active, revoked or expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"
