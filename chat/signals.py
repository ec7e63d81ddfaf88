"""Sign-out ends private conversations (the page says so next to the "private" switch)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from chat.history.services import conversations_private_delete


@receiver(user_logged_out, dispatch_uid="chat.private_conversations_at_sign_out")
def private_conversations_at_sign_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.is_authenticated:
        conversations_private_delete(user=user)
