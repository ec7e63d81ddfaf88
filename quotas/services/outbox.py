"""Carrying outbox rows to the store: one drain loop for both outboxes.

How a change reaches the data plane:

1. The change and its outbox rows are written in one transaction (`policy_publish_request`,
   `prepared_publish_request`), so a rolled-back change leaves no row and a committed one
   always has its row.
2. After commit, the `quotas.outbox_drain` Celery task is enqueued (`outbox_drain_on_commit`).
3. `outbox_drain` publishes pending rows in order. The store refuses a policy version older
   than or equal to the one it holds, so publishing twice, or out of order, is harmless.

The two outboxes differ only in how rows are claimed, written and marked done (`PolicyRows`,
`PreparedRows`); claiming a batch, stopping at an outage and failing a rejected row are shared.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dataplane.errors import StoreUnavailableError
from dataplane.policy import EffectivePolicy
from dataplane.stores.base import PreparedAnswer, Store
from quotas import store as store_port
from quotas.models import OutboxStatus, PolicyOutbox, PolicySyncState, PreparedOutbox

logger = logging.getLogger(__name__)

DRAIN_BATCH_SIZE = 100


# -- enqueueing a drain after commit --------------------------------------------------------------
def _enqueue_drain() -> None:
    from quotas.tasks import outbox_drain as outbox_drain_task

    try:
        outbox_drain_task.delay()
    except StoreUnavailableError as error:
        # Only in eager mode (tests, embedded default): the change is saved, the row waits.
        logger.warning("outbox drain deferred: %s", error)
    except Exception:  # the broker is down: the periodic drain or `sync_policies` will publish
        logger.exception("could not enqueue the outbox drain; rows stay pending")


def outbox_drain_on_commit() -> None:
    """Enqueue a drain after the current transaction commits.

    Several changes in one transaction enqueue several drains; the first publishes everything
    and the others find nothing pending (two cheap queries), which is simpler than tracking
    savepoints to enqueue exactly one.
    """
    transaction.on_commit(_enqueue_drain, robust=True)


# -- the drain ----------------------------------------------------------------------------------------
@dataclass
class DrainResult:
    written: int = 0
    superseded: int = 0
    deleted: int = 0
    failed: int = 0
    prepared: int = 0
    more: bool = False  # stopped at `max_batches` with rows still pending

    def as_dict(self) -> dict[str, int]:
        return {name: int(value) for name, value in self.__dict__.items()}


def drain_batch_size() -> int:
    return int(getattr(settings, "QUOTAS_OUTBOX_BATCH_SIZE", DRAIN_BATCH_SIZE))


def outbox_drain(*, batch_size: int | None = None, max_batches: int | None = None) -> DrainResult:
    """Publish pending rows: policies in version order, then prepared responses in order.

    Each batch is its own transaction, so work done before a crash stays done. With
    `max_batches`, stops early and sets `more` (the Celery task then re-enqueues itself, which
    keeps every task short). Raises `StoreUnavailableError` when the store is down; the row it
    stopped at and those after it stay `pending`, with the error and one more attempt recorded.
    """
    size = batch_size or drain_batch_size()
    result = DrainResult()
    batches = 0
    for rows in (PolicyRows(), PreparedRows()):
        # A batch that was not full emptied its outbox; only full ones count towards the limit.
        while _batch_drain(rows, batch_size=size, result=result):
            batches += 1
            if max_batches is not None and batches >= max_batches:
                result.more = True
                return result
    return result


class OutboxRows(Protocol):
    """What the drain loop needs from one outbox."""

    model: Any

    def claim(self, batch_size: int) -> list[Any]: ...

    def publish(self, store: Store, row: Any) -> str: ...

    def finish(self, row: Any, *, outcome: str, tally: DrainResult) -> None: ...

    def outage(self, rows: list[Any], error: StoreUnavailableError) -> None: ...


def _batch_drain(rows_of: OutboxRows, *, batch_size: int, result: DrainResult) -> bool:
    """Publish one batch; True when a full batch was done (so there may be more)."""
    store = store_port.store_get()
    outage: StoreUnavailableError | None = None
    with transaction.atomic():
        rows = rows_of.claim(batch_size)
        for index, row in enumerate(rows):
            try:
                outcome = rows_of.publish(store, row)
            except StoreUnavailableError as error:
                outage = error
                rows_of.outage(rows[index:], error)
                break
            except Exception as error:  # a document the store rejects: not worth retrying
                logger.exception("%s row %s failed", rows_of.model.__name__, row.pk)
                rows_of.model.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
                    status=OutboxStatus.FAILED, attempts=row.attempts + 1, last_error=f"{type(error).__name__}: {error}"
                )
                result.failed += 1
                continue
            rows_of.finish(row, outcome=outcome, tally=result)
    if outage is not None:
        raise outage
    return len(rows) == batch_size


def _rows_outage(model: Any, rows: list[Any], error: StoreUnavailableError) -> None:
    for row in rows:
        model.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
            attempts=row.attempts + 1, last_error=str(error)
        )


def _row_done(model: Any, row: Any, **fields: Any) -> bool:
    # The status condition makes "done" happen once even without row locks (SQLite).
    return bool(
        model.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.DONE, attempts=row.attempts + 1, published_at=timezone.now(), last_error="", **fields
        )
    )


class PolicyRows:
    model = PolicyOutbox

    def __init__(self) -> None:
        self._newest: dict[str, int] = {}

    def claim(self, batch_size: int) -> list[PolicyOutbox]:
        # skip_locked: two workers never take the same row; SQLite has no row locks and falls
        # back to the conditional update in `_row_done` plus the store's version guard.
        rows = list(
            PolicyOutbox.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.PENDING)
            .order_by("version", "id")[:batch_size]
        )
        self._newest = {row.sub: row.version for row in rows}
        return rows

    def publish(self, store: Store, row: PolicyOutbox) -> str:
        if row.version < self._newest[row.sub]:
            return PolicyOutbox.Result.SUPERSEDED  # a newer row of this user is in the same batch
        if row.document is None:
            store.policy_delete(row.sub)
            return PolicyOutbox.Result.DELETED
        written = store.policy_put(EffectivePolicy.from_document(row.document))
        return PolicyOutbox.Result.WRITTEN if written else PolicyOutbox.Result.SUPERSEDED

    def finish(self, row: PolicyOutbox, *, outcome: str, tally: DrainResult) -> None:
        if not _row_done(PolicyOutbox, row, result=outcome):
            return
        if outcome == PolicyOutbox.Result.WRITTEN:
            tally.written += 1
        elif outcome == PolicyOutbox.Result.DELETED:
            tally.deleted += 1
        else:
            tally.superseded += 1
        if row.user_id and outcome == PolicyOutbox.Result.WRITTEN:
            published = {"published_version": row.version, "published_at": timezone.now(), "last_error": ""}
            state = PolicySyncState.objects.filter(user_id=row.user_id)
            state.filter(published_version__isnull=True).update(**published)
            state.filter(published_version__lt=row.version).update(**published)

    def outage(self, rows: list[PolicyOutbox], error: StoreUnavailableError) -> None:
        _rows_outage(PolicyOutbox, rows, error)
        user_ids = {row.user_id for row in rows if row.user_id}
        PolicySyncState.objects.filter(user_id__in=user_ids).update(last_error=str(error), last_error_at=timezone.now())


class PreparedRows:
    model = PreparedOutbox

    def claim(self, batch_size: int) -> list[PreparedOutbox]:
        # A blocking lock taken in id order: a second worker waits behind the first and then
        # sees its rows done, so a put and a later delete of one key can never swap places.
        return list(
            PreparedOutbox.objects.select_for_update().filter(status=OutboxStatus.PENDING).order_by("id")[:batch_size]
        )

    def publish(self, store: Store, row: PreparedOutbox) -> str:
        if row.action == PreparedOutbox.Action.PUT:
            store.prepared_put(PreparedAnswer(**(row.document or {})))
        else:
            store.prepared_delete(question_key=row.question_key, model_id=row.model_id)
        return row.action

    def finish(self, row: PreparedOutbox, *, outcome: str, tally: DrainResult) -> None:
        if _row_done(PreparedOutbox, row):
            tally.prepared += 1

    def outage(self, rows: list[PreparedOutbox], error: StoreUnavailableError) -> None:
        _rows_outage(PreparedOutbox, rows, error)
