"""Writes: publishing policies and prepared responses through the outbox, and admin operations.

How a change reaches the data plane:

1. The change and its outbox rows are written in one transaction (`policy_publish_request`,
   `prepared_publish_request`), so a rolled-back change leaves no row and a committed one
   always has its row.
2. After commit, the `quotas.outbox_drain` Celery task is enqueued (`outbox_drain_on_commit`).
3. `outbox_drain` publishes pending rows in version order. The store refuses a version older
   than or equal to the one it holds, so publishing twice, or out of order, is harmless.

Versions: `max(last version for this user + 1, microseconds since the epoch)`, handed out under
a row lock on the user's `PolicySyncState`. The per-user counter makes versions strictly
increasing for one user even when clocks step back; the clock part keeps them above anything
an earlier Django database published, so a rebuilt control plane can still overwrite the store.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from dataplane.errors import StoreUnavailableError
from dataplane.policy import EffectivePolicy
from dataplane.stores.base import PreparedAnswer
from quotas import store as store_port
from quotas.models import (
    ModelCatalogueEntry,
    OutboxStatus,
    PolicyOutbox,
    PolicySyncState,
    PreparedOutbox,
    PreparedResponse,
    QuotaPolicy,
)
from quotas.selectors import effective_policy_compute, policy_document_comparable, policy_resolve, usage_charges

logger = logging.getLogger(__name__)
User = get_user_model()

DRAIN_BATCH_SIZE = 100


# -- requesting publication (inside the caller's transaction) -----------------------------------
def _json_normalised(document: dict[str, Any]) -> dict[str, Any]:
    """What the document looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(document))


def _next_version(state: PolicySyncState) -> int:
    return max(state.last_version + 1, time.time_ns() // 1000)


@transaction.atomic
def policy_publish_request(*, users: Iterable[Any], force: bool = False) -> int:
    """Write an outbox row for each user whose effective policy changed; returns how many.

    With `force`, a row is written even when the document is the same as the last one sent
    (the full resync uses it, e.g. after the store was emptied). Older pending rows of the same
    user are marked superseded: only the newest document matters.
    """
    user_ids = sorted({user.pk for user in users if user.pk is not None})
    if not user_ids:
        return 0
    PolicySyncState.objects.bulk_create(
        [PolicySyncState(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
    )
    # Locking in id order keeps two concurrent publishes from deadlocking each other.
    states = PolicySyncState.objects.select_for_update().filter(user_id__in=user_ids).order_by("user_id")
    states_by_user = {state.user_id: state for state in states}
    written = 0
    for user in User.objects.filter(pk__in=user_ids).order_by("pk"):
        if _policy_outbox_write(user=user, state=states_by_user[user.pk], force=force):
            written += 1
    if written:
        outbox_drain_on_commit()
    return written


def _policy_outbox_write(*, user: Any, state: PolicySyncState, force: bool) -> bool:
    computed = effective_policy_compute(user=user)
    comparable = _json_normalised(policy_document_comparable(computed.to_document()))
    if not force:
        last = (
            PolicyOutbox.objects.filter(sub=user.sub)
            .exclude(status=OutboxStatus.FAILED)
            .order_by("-version")
            .values_list("document", flat=True)
            .first()
        )
        if last is not None and policy_document_comparable(last) == comparable:
            return False
    version = _next_version(state)
    document = _json_normalised({**computed.to_document(), "version": version})
    PolicyOutbox.objects.filter(sub=user.sub, status=OutboxStatus.PENDING).update(
        status=OutboxStatus.DONE, result=PolicyOutbox.Result.SUPERSEDED, published_at=timezone.now()
    )
    PolicyOutbox.objects.create(
        sub=user.sub, user=user, policy=policy_resolve(user=user), version=version, document=document
    )
    state.last_version = version
    state.save(update_fields=["last_version"])
    return True


@transaction.atomic
def policy_unpublish_request(*, sub: str) -> None:
    """A deleted user's policy leaves the store (a row with no document means delete)."""
    PolicyOutbox.objects.filter(sub=sub, status=OutboxStatus.PENDING).update(
        status=OutboxStatus.DONE, result=PolicyOutbox.Result.SUPERSEDED, published_at=timezone.now()
    )
    PolicyOutbox.objects.create(sub=sub, version=time.time_ns() // 1000, document=None)
    outbox_drain_on_commit()


def users_everyone() -> Any:
    return User.objects.all()


def users_of_policy(*, policy: QuotaPolicy) -> Any:
    """Everyone `policy` may apply to: overrides, members of its groups, and all when default."""
    if policy.is_default:
        return User.objects.all()
    return User.objects.filter(pk__in=_user_ids_of_policy(policy)).distinct()


def _user_ids_of_policy(policy: QuotaPolicy) -> set[int]:
    ids = set(policy.user_overrides.values_list("user_id", flat=True))
    ids |= set(User.objects.filter(groups__quota_policy_assignment__policy=policy).values_list("pk", flat=True))
    # Users whose last published document names this policy (e.g. just moved off it).
    ids |= set(PolicyOutbox.objects.filter(policy=policy).exclude(user=None).values_list("user_id", flat=True))
    return ids


def policy_change_publish(*, policy: QuotaPolicy) -> int:
    return policy_publish_request(users=users_of_policy(policy=policy))


def group_change_publish(*, group: Group) -> int:
    return policy_publish_request(users=User.objects.filter(groups=group))


def membership_change_publish(*, instance: Any, action: str, reverse: bool, pk_set: set[int] | None) -> int:
    """`User.groups` changed (from either side); republish the users it touched."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return 0
    if not reverse:
        return policy_publish_request(users=[instance])
    if pk_set is None:  # a group was cleared: we no longer know who was in it
        return policy_publish_request(users=users_everyone())
    return policy_publish_request(users=User.objects.filter(pk__in=pk_set))


def assignment_change_publish(*, user_id: int | None = None, group_id: int | None = None, origin: Any = None) -> int:
    """An allow-list entry or a policy assignment of one user or one group changed."""
    if _owner_being_deleted(origin):
        return 0  # the user's or group's own deletion handler republishes
    if user_id is not None:
        return policy_publish_request(users=User.objects.filter(pk=user_id))
    assert group_id is not None, "a user or a group changed"
    return policy_publish_request(users=User.objects.filter(groups__pk=group_id))


def _owner_being_deleted(origin: Any) -> bool:
    """Is this row going away because its user or group is being deleted?

    Publishing then would recreate the deleted user's sync state inside the deletion.
    """
    model = origin.model if isinstance(origin, QuerySet) else type(origin)
    return origin is not None and issubclass(model, (User, Group))


def catalogue_change_publish(*, entry: ModelCatalogueEntry) -> int:
    # A model's name, price or availability is part of every document that lists it; comparing
    # documents below skips users whose policy did not change.
    return policy_publish_request(users=users_everyone())


@transaction.atomic
def policy_default_set(*, policy: QuotaPolicy) -> None:
    """Make `policy` the one default, in one transaction (there is never zero or two)."""
    QuotaPolicy.objects.filter(is_default=True).exclude(pk=policy.pk).update(is_default=False)
    QuotaPolicy.objects.filter(pk=policy.pk).update(is_default=True)
    policy.is_default = True
    policy_publish_request(users=users_everyone())


# -- prepared responses -------------------------------------------------------------------------
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
    outbox_drain_on_commit()


@transaction.atomic
def prepared_unpublish_request(*, prepared: PreparedResponse) -> None:
    """A deleted prepared response leaves the store (under the key the store has it by)."""
    if prepared.published_question_key:
        question_key, model_id = prepared.published_question_key, prepared.published_model_id
    else:
        question_key, model_id = prepared.question_key, ""
    PreparedOutbox.objects.create(action=PreparedOutbox.Action.DELETE, question_key=question_key, model_id=model_id)
    outbox_drain_on_commit()


@transaction.atomic
def prepared_purge(*, prepared: PreparedResponse) -> None:
    """Take a prepared response out of the store now; it stays disabled in Django until re-enabled."""
    prepared.enabled = False
    prepared.save()  # the post_save handler queues the deletion


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


# -- draining the outbox ----------------------------------------------------------------------------
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
    from django.conf import settings

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
    for drain_batch in (_policy_batch_drain, _prepared_batch_drain):
        # A batch that was not full emptied its outbox; only full ones count towards the limit.
        while drain_batch(batch_size=size, result=result):
            batches += 1
            if max_batches is not None and batches >= max_batches:
                result.more = True
                return result
    return result


def _policy_batch_drain(*, batch_size: int, result: DrainResult) -> bool:
    """Publish one batch; True when a full batch was done (so there may be more)."""
    store = store_port.store_get()
    outage: StoreUnavailableError | None = None
    with transaction.atomic():
        # skip_locked: two workers never take the same row; SQLite has no row locks and falls
        # back to the conditional update in `_policy_row_finish` plus the store's version guard.
        rows = list(
            PolicyOutbox.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.PENDING)
            .order_by("version", "id")[:batch_size]
        )
        newest = {row.sub: row.version for row in rows}
        for index, row in enumerate(rows):
            if row.version < newest[row.sub]:
                _policy_row_finish(row, result=PolicyOutbox.Result.SUPERSEDED, tally=result)
                continue
            try:
                outcome = _policy_row_publish(store, row)
            except StoreUnavailableError as error:
                outage = error
                _policy_rows_outage(rows[index:], error)
                break
            except Exception as error:  # a document the store rejects: not worth retrying
                logger.exception("policy outbox row %s failed", row.pk)
                PolicyOutbox.objects.filter(pk=row.pk).update(
                    status=OutboxStatus.FAILED, attempts=row.attempts + 1, last_error=f"{type(error).__name__}: {error}"
                )
                result.failed += 1
                continue
            _policy_row_finish(row, result=outcome, tally=result)
    if outage is not None:
        raise outage
    return len(rows) == batch_size


def _policy_row_publish(store: Any, row: PolicyOutbox) -> str:
    if row.document is None:
        store.policy_delete(row.sub)
        return PolicyOutbox.Result.DELETED
    written = store.policy_put(EffectivePolicy.from_document(row.document))
    return PolicyOutbox.Result.WRITTEN if written else PolicyOutbox.Result.SUPERSEDED


def _policy_row_finish(row: PolicyOutbox, *, result: str, tally: DrainResult) -> None:
    now = timezone.now()
    # The status condition makes "done" happen once even without row locks (SQLite).
    marked = PolicyOutbox.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
        status=OutboxStatus.DONE, result=result, attempts=row.attempts + 1, published_at=now, last_error=""
    )
    if not marked:
        return
    if result == PolicyOutbox.Result.WRITTEN:
        tally.written += 1
    elif result == PolicyOutbox.Result.DELETED:
        tally.deleted += 1
    else:
        tally.superseded += 1
    if row.user_id and result == PolicyOutbox.Result.WRITTEN:
        state = PolicySyncState.objects.filter(user_id=row.user_id)
        state.filter(published_version__isnull=True).update(
            published_version=row.version, published_at=now, last_error=""
        )
        state.filter(published_version__lt=row.version).update(
            published_version=row.version, published_at=now, last_error=""
        )


def _policy_rows_outage(rows: list[PolicyOutbox], error: StoreUnavailableError) -> None:
    now = timezone.now()
    message = str(error)
    for row in rows:
        PolicyOutbox.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
            attempts=row.attempts + 1, last_error=message
        )
    user_ids = {row.user_id for row in rows if row.user_id}
    PolicySyncState.objects.filter(user_id__in=user_ids).update(last_error=message, last_error_at=now)


def _prepared_batch_drain(*, batch_size: int, result: DrainResult) -> bool:
    store = store_port.store_get()
    outage: StoreUnavailableError | None = None
    with transaction.atomic():
        # A blocking lock taken in id order: a second worker waits behind the first and then
        # sees its rows done, so a put and a later delete of one key can never swap places.
        rows = list(
            PreparedOutbox.objects.select_for_update().filter(status=OutboxStatus.PENDING).order_by("id")[:batch_size]
        )
        for index, row in enumerate(rows):
            try:
                if row.action == PreparedOutbox.Action.PUT:
                    store.prepared_put(PreparedAnswer(**(row.document or {})))
                else:
                    store.prepared_delete(question_key=row.question_key, model_id=row.model_id)
            except StoreUnavailableError as error:
                outage = error
                for pending in rows[index:]:
                    PreparedOutbox.objects.filter(pk=pending.pk).update(
                        attempts=pending.attempts + 1, last_error=str(error)
                    )
                break
            PreparedOutbox.objects.filter(pk=row.pk, status=OutboxStatus.PENDING).update(
                status=OutboxStatus.DONE, attempts=row.attempts + 1, published_at=timezone.now(), last_error=""
            )
            result.prepared += 1
    if outage is not None:
        raise outage
    return len(rows) == batch_size


# -- admin operations on the store -----------------------------------------------------------------
def usage_window_reset(*, user: Any, window: str) -> str:
    """Zero the user's current `window` ("10m" or "month"); returns the window key reset."""
    policy = effective_policy_compute(user=user)
    charges = {charge.window.kind: charge.window for charge in usage_charges(policy=policy)}
    if window not in charges:
        raise ValueError(f"Unknown window {window!r}; expected one of {sorted(charges)}")
    key = charges[window].key
    store_port.store_get().usage_reset(sub=user.sub, window_key=key)
    return key


def answer_cache_purge() -> int:
    """Delete every cached answer (prepared responses stay); returns how many."""
    return store_port.store_get().cache_purge()


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



@transaction.atomic
def catalogue_enabled_set(*, entries: Iterable[ModelCatalogueEntry], enabled: bool) -> int:
    """Enable or disable models in bulk; a queryset update sends no signal, so publish here."""
    ids = [entry.pk for entry in entries]
    changed = ModelCatalogueEntry.objects.filter(pk__in=ids).exclude(enabled=enabled).update(enabled=enabled)
    if changed:
        policy_publish_request(users=users_everyone())
    return changed


@transaction.atomic
def policies_republish(*, policies: Iterable[QuotaPolicy]) -> int:
    """Force a fresh version for every user the policies apply to."""
    user_ids: set[int] = set()
    for policy in policies:
        user_ids |= set(users_of_policy(policy=policy).values_list("pk", flat=True))
    return policy_publish_request(users=User.objects.filter(pk__in=user_ids), force=True)


@transaction.atomic
def outbox_failed_retry(*, rows: Iterable[PolicyOutbox]) -> int:
    """Failed rows are not replayed as they were: their users get a fresh document instead."""
    user_ids = {row.user_id for row in rows if row.user_id and row.status == OutboxStatus.FAILED}
    return policy_publish_request(users=User.objects.filter(pk__in=user_ids), force=True)


def periodic_drain_ensure() -> None:
    """Schedule the outbox drain every minute (beat) so rows left pending by an outage or a
    broker hiccup are published without anyone acting; and the expiry sweep hourly."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.update_or_create(
        name="Publish pending policy outbox rows", defaults={"task": "quotas.outbox_drain", "interval": every_minute}
    )
    PeriodicTask.objects.update_or_create(
        name="Withdraw expired prepared responses",
        defaults={"task": "quotas.prepared_expired_unpublish", "interval": hourly},
    )
