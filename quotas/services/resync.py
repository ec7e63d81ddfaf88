"""The full resync: every user's policy and every prepared response, published now."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from quotas.models import OutboxStatus, PolicyOutbox, PreparedOutbox
from quotas.services.outbox import outbox_drain
from quotas.services.policies import policy_publish_request, users_everyone
from quotas.services.prepared import prepared_publish_all


@dataclass(frozen=True)
class SyncResult:
    policies_queued: int
    prepared_queued: int
    pending: int  # rows still pending afterwards (0 unless the store failed part way)
    failed: int


def policy_sync_all() -> SyncResult:
    """Republish every user's policy and every prepared response, and publish them now.

    Raises `StoreUnavailableError` when the store is down (the rows stay pending for a later drain).
    """
    with transaction.atomic():
        policies = policy_publish_request(users=users_everyone(), force=True)
        prepared = prepared_publish_all()
    # The commit above may already have drained (eager Celery); this drains whatever is left.
    outbox_drain()
    return SyncResult(
        policies_queued=policies,
        prepared_queued=prepared,
        pending=PolicyOutbox.objects.filter(status=OutboxStatus.PENDING).count()
        + PreparedOutbox.objects.filter(status=OutboxStatus.PENDING).count(),
        failed=PolicyOutbox.objects.filter(status=OutboxStatus.FAILED).count(),
    )
