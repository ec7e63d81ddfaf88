"""Prepared responses: saving them (with their question key) and carrying them to the store."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from dataplane.cache_keys import prepared_question_key
from quotas.models import ModelCatalogueEntry, PreparedOutbox, PreparedResponse
from quotas.services import outbox


def prepared_question_problem(
    *, question: str, model: ModelCatalogueEntry | None, exclude_pk: int | None = None
) -> str | None:
    """Why `question` cannot be added for `model`, if it cannot: one answer per question
    (up to case, spacing and punctuation) and scope."""
    if not (question or "").strip():
        return gettext("Enter a question.")
    clash = (
        PreparedResponse.objects.filter(question_key=prepared_question_key(question), model=model)
        .exclude(pk=exclude_pk or 0)  # 0: no row has it (a new answer excludes nothing)
        .first()
    )
    if clash is None:
        return None
    scope = gettext("for %(model)s") % {"model": model.display_name} if model else gettext("for every model")
    return gettext("A prepared response to this question already exists %(scope)s: “%(question)s”.") % {
        "scope": scope, "question": clash.question,
    }


@transaction.atomic
def prepared_save(*, prepared: PreparedResponse) -> PreparedResponse:
    """Create or change a prepared response and queue the store write that matches it.

    Raises `ValidationError` (on `question`) when another response has the same question and scope.
    """
    problem = prepared_question_problem(question=prepared.question, model=prepared.model, exclude_pk=prepared.pk)
    if problem:
        raise ValidationError({"question": problem})
    prepared.question_key = prepared_question_key(prepared.question)
    prepared.save()
    prepared_publish_request(prepared=prepared)
    return prepared


@transaction.atomic
def prepared_delete(*, prepared: PreparedResponse) -> None:
    """Delete a prepared response; the store loses it under the key it has it by."""
    prepared_unpublish_request(prepared=prepared)
    prepared.delete()


def _prepared_document(prepared: PreparedResponse) -> dict[str, Any]:
    return {
        "question_key": prepared.question_key,
        "model_id": prepared.store_model_id,
        "text": prepared.answer,
        "question": prepared.question,
        "expires_at": int(prepared.expires_at.timestamp()) if prepared.expires_at else None,
    }


def prepared_is_live(prepared: PreparedResponse, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return prepared.enabled and (prepared.expires_at is None or prepared.expires_at > now)


@transaction.atomic
def prepared_publish_request(*, prepared: PreparedResponse) -> None:
    """Queue the store write (or deletion) that makes the store match `prepared`."""
    model_id = prepared.store_model_id
    moved = bool(prepared.published_question_key) and (
        prepared.published_question_key,
        prepared.published_model_id,
    ) != (prepared.question_key, model_id)
    if moved:
        PreparedOutbox.objects.create(
            action=PreparedOutbox.Action.DELETE,
            question_key=prepared.published_question_key,
            model_id=prepared.published_model_id,
            prepared=prepared,
        )
    live = prepared_is_live(prepared)
    if live:
        PreparedOutbox.objects.create(
            action=PreparedOutbox.Action.PUT,
            question_key=prepared.question_key,
            model_id=model_id,
            document=_prepared_document(prepared),
            prepared=prepared,
        )
    else:
        PreparedOutbox.objects.create(
            action=PreparedOutbox.Action.DELETE,
            question_key=prepared.question_key,
            model_id=model_id,
            prepared=prepared,
        )
    # Remember what the store holds ("" = nothing), so a later change deletes the right item.
    in_store = (prepared.question_key, model_id) if live else ("", "")
    PreparedResponse.objects.filter(pk=prepared.pk).update(
        published_question_key=in_store[0], published_model_id=in_store[1]
    )
    prepared.published_question_key, prepared.published_model_id = in_store
    outbox.outbox_drain_on_commit()


@transaction.atomic
def prepared_unpublish_request(*, prepared: PreparedResponse) -> None:
    """A prepared response about to be deleted leaves the store (under the key the store has it by)."""
    if prepared.published_question_key:
        question_key, model_id = prepared.published_question_key, prepared.published_model_id
    else:
        question_key, model_id = prepared.question_key, ""
    PreparedOutbox.objects.create(action=PreparedOutbox.Action.DELETE, question_key=question_key, model_id=model_id)
    outbox.outbox_drain_on_commit()


@transaction.atomic
def prepared_purge(*, prepared: PreparedResponse) -> None:
    """Take a prepared response out of the store now; it stays disabled in Django until re-enabled."""
    PreparedResponse.objects.filter(pk=prepared.pk).update(enabled=False, updated_at=timezone.now())
    prepared.enabled = False
    prepared_publish_request(prepared=prepared)


def prepared_expired_unpublish(*, now: datetime | None = None) -> int:
    """Queue deletions for enabled responses that have expired (the store also hides them)."""
    expired = PreparedResponse.objects.filter(enabled=True, expires_at__lte=now or timezone.now()).exclude(
        published_question_key=""
    )
    count = 0
    for prepared in expired:
        prepared_publish_request(prepared=prepared)
        count += 1
    return count


@transaction.atomic
def prepared_publish_all() -> int:
    count = 0
    for prepared in PreparedResponse.objects.select_related("model"):
        prepared_publish_request(prepared=prepared)
        count += 1
    return count
