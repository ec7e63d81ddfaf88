"""Celery tasks: thin, id-free (the outbox is the queue), retrying only a store outage."""
from __future__ import annotations

import logging

from celery import shared_task

from dataplane.errors import StoreUnavailableError

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
BATCHES_PER_TASK = 1


@shared_task(bind=True, name="quotas.outbox_drain", max_retries=12, soft_time_limit=120, time_limit=150, acks_late=True)
def outbox_drain(self) -> dict[str, int]:
    """Publish pending outbox rows to the store; back off and retry while the store is down."""
    from quotas.services import outbox_drain as outbox_drain_service

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
    from quotas.services import prepared_expired_unpublish as unpublish

    return unpublish()
