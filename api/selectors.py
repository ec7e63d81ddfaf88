"""Reading API keys: authenticating a request and listing a user's keys."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from api.models import ApiKey
from api.services import KEY_SCHEME, api_key_hash


@dataclass(frozen=True)
class KeyHolder:
    """Who a valid key acts for, and what it narrows."""

    key_id: int
    sub: str
    username: str
    model_ids: frozenset[str]  # empty: every model of the user's policy


class ApiKeyRejectedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def api_key_authenticate(*, secret: str) -> KeyHolder:
    """The holder of a presented key, or `ApiKeyRejectedError` saying why (in words safe to show: they
    never say whether a key exists for someone else). Only reads: the door records the use
    once the request is answered (`api_key_used`), in one write."""
    if not secret.startswith(f"{KEY_SCHEME}_"):
        raise ApiKeyRejectedError("Incorrect API key provided. Create one on your API keys page.")
    key = (
        ApiKey.objects.select_related("user")
        .prefetch_related("allowed_models")
        .filter(key_hash=api_key_hash(secret))
        .first()
    )
    if key is None:
        raise ApiKeyRejectedError("Incorrect API key provided. Create one on your API keys page.")
    now = timezone.now()
    state = key.state(now)
    if state == "revoked":
        raise ApiKeyRejectedError(f"The API key {key.prefix}… was revoked.")
    if state == "expired":
        raise ApiKeyRejectedError(f"The API key {key.prefix}… expired.")
    if not key.user.is_active:
        raise ApiKeyRejectedError("The account this API key belongs to is disabled.")
    return KeyHolder(
        key_id=key.pk,
        sub=key.user.sub,
        username=key.user.get_username(),
        model_ids=frozenset(model.model_id for model in key.allowed_models.all()),
    )


def api_keys_of(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).prefetch_related("allowed_models").order_by("-created_at")
