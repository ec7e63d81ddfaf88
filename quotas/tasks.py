"""Celery tasks: thin (ids in, one service call), retrying only transient errors, with time limits.

The outbox drain takes no ids: the outbox is its queue.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

from dataplane.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
BATCHES_PER_TASK = 1


@shared_task(bind=True, name="quotas.outbox_drain", max_retries=12, soft_time_limit=120, time_limit=150, acks_late=True)
def outbox_drain(self) -> dict[str, int]:
    """Publish pending outbox rows to the store; back off and retry while the store is down."""
    from quotas.services.outbox import outbox_drain as outbox_drain_service

    try:
        result = outbox_drain_service(max_batches=None if self.request.is_eager else BATCHES_PER_TASK)
    except StoreUnavailableError as error:
        if self.request.is_eager:
            # Eager mode runs inside the request that saved the change: never fail it, never
            # spin. The rows stay pending for the periodic drain or `sync_policies`.
            logger.warning("store unavailable, outbox rows stay pending: %s", error)
            return {"pending": 1}
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries, MAX_BACKOFF_SECONDS)) from error
    if result.more:
        # A long backlog continues in a fresh task: each stays well inside its time limit, and
        # a worker stopped between batches leaves the rest to the next one.
        outbox_drain.delay()
    return result.as_dict()


@shared_task(name="quotas.prepared_expired_unpublish", soft_time_limit=60, time_limit=90)
def prepared_expired_unpublish() -> int:
    from quotas.services.prepared import prepared_expired_unpublish as unpublish

    return unpublish()


@shared_task(
    bind=True, name="quotas.catalogue_republish", max_retries=5, soft_time_limit=600, time_limit=660, acks_late=True
)
def catalogue_republish(self, entry_ids: list[int]) -> int:
    """Republish every user after a change to the catalogue models `entry_ids`.

    Retries only a database hiccup (a dropped connection, a deadlock between two publishes);
    anything else is a bug to see, not to repeat. A retry is safe: users whose document is
    already queued are skipped.
    """
    from quotas.services.catalogue import catalogue_republish as catalogue_republish_service

    try:
        return catalogue_republish_service(entry_ids=entry_ids)
    except OperationalError as error:
        if self.request.is_eager:
            raise
        raise self.retry(exc=error, countdown=min(2 ** self.request.retries * 5, MAX_BACKOFF_SECONDS)) from error


@shared_task(name="quotas.budget_alerts_check", soft_time_limit=50, time_limit=60)
def budget_alerts_check() -> int:
    """Alert users and admins of monthly budgets 80 % and 100 % spent; a store outage waits
    for the next minute's run."""
    from quotas.budget_alerts import budget_alerts_check as check

    try:
        return len(check())
    except StoreUnavailableError as error:
        logger.warning("budget alerts skipped, the store is unavailable: %s", error)
        return 0
