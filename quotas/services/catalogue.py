"""The model catalogue: a change to one model may change every user's document.

A model's name, price or availability is part of every document that lists it, so a catalogue
change republishes every user. That is one effective-policy computation per user: too slow for
the admin's request. The admin's transaction only enqueues `quotas.catalogue_republish` after
commit; the worker computes and writes the outbox rows, skipping users whose document did not
change.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from quotas.models import ModelCatalogueEntry
from quotas.services import policies, prepared

logger = logging.getLogger(__name__)


def catalogue_republish_request(*, entry_ids: Iterable[int]) -> None:
    """After the current transaction commits, republish every user in the background."""
    ids = sorted({entry_id for entry_id in entry_ids if entry_id is not None})
    transaction.on_commit(lambda: _enqueue_republish(ids), robust=True)


def _enqueue_republish(entry_ids: list[int]) -> None:
    from quotas.tasks import catalogue_republish as catalogue_republish_task

    try:
        catalogue_republish_task.delay(entry_ids)
    except Exception:  # the broker is down: `sync_policies` (or the next catalogue change) republishes
        logger.exception("could not enqueue the catalogue republish for models %s", entry_ids)


def catalogue_republish(*, entry_ids: Iterable[int]) -> int:
    """Republish every user whose document changed after a change to the models `entry_ids`
    (which may no longer exist); returns how many were queued."""
    queued = policies.policy_publish_request(users=policies.users_everyone())
    logger.info("catalogue change (models %s): %s user policies queued", sorted(entry_ids), queued)
    return queued


@transaction.atomic
def catalogue_enabled_set(*, entries: Iterable[ModelCatalogueEntry], enabled: bool) -> int:
    """Enable or disable models in bulk; returns how many changed."""
    ids = [entry.pk for entry in entries]
    changed = ModelCatalogueEntry.objects.filter(pk__in=ids).exclude(enabled=enabled).update(enabled=enabled)
    if changed:
        catalogue_republish_request(entry_ids=ids)
    return changed


@transaction.atomic
def catalogue_entry_delete(*, entry: ModelCatalogueEntry) -> None:
    """Delete a model; its prepared responses leave the store with it (they are deleted too)."""
    for answer in entry.prepared_responses.all():
        prepared.prepared_unpublish_request(prepared=answer)
    entry_id = entry.pk
    entry.delete()
    catalogue_republish_request(entry_ids=[entry_id])
