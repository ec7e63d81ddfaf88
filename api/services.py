"""Creating, revoking and accounting personal API keys."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from api.models import ApiKey
from quotas.models import ModelCatalogueEntry

KEY_SCHEME = "gwk"  # what every key starts with, so secret scanners and people recognise one
PREFIX_CHARS = 8


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the whole key: shown once, never stored


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, user: User, name: str, expires_at: datetime | None = None, models: list[ModelCatalogueEntry] | None = None
) -> IssuedKey:
    """A new key for `user`; the returned secret is the only time the whole key exists."""
    while True:
        visible = secrets.token_hex(PREFIX_CHARS // 2)
        prefix = f"{KEY_SCHEME}_{visible}"
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, key_hash=api_key_hash(secret), expires_at=expires_at
    )
    if models:
        key.allowed_models.set(models)
    return IssuedKey(key=key, secret=secret)


def api_key_revoke(*, key: ApiKey) -> None:
    """Stop a key at once; revoking twice keeps the first time."""
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db(fields=["revoked_at"])


def api_key_used(*, key_id: int, input_tokens: int = 0, output_tokens: int = 0) -> None:
    """Record one use of a key in one write: when, and, for a request that was billed, its
    tokens (in the database, not read-modify-write)."""
    used: dict[str, Any] = {"last_used_at": timezone.now()}
    if input_tokens or output_tokens:
        used.update(
            request_count=F("request_count") + 1,
            input_tokens=F("input_tokens") + input_tokens,
            output_tokens=F("output_tokens") + output_tokens,
        )
    ApiKey.objects.filter(pk=key_id).update(**used)
