"""Policy publication: who a change affects, and the outbox rows that carry their new documents.

Callers say what changed (a policy, an assignment, a group, a user) inside their transaction;
the functions here work out whose effective policy may differ and write an outbox row for each
user whose document really changed.

Versions: `max(last version for this user + 1, microseconds since the epoch)`, handed out under
a row lock on the user's `PolicySyncState`. The per-user counter makes versions strictly
increasing for one user even when clocks step back; the clock part keeps them above anything
an earlier Django database published, so a rebuilt control plane can still overwrite the store.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from quotas.models import OutboxStatus, PolicyOutbox, PolicySyncState, QuotaPolicy
from quotas.selectors import effective_policy_compute, policy_document_comparable, policy_resolve
from quotas.services import outbox

User = get_user_model()


# -- writing outbox rows (inside the caller's transaction) ------------------------------------------
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
        outbox.outbox_drain_on_commit()
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
    outbox.outbox_drain_on_commit()


# -- who a change affects ------------------------------------------------------------------------------
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


# -- what changed ----------------------------------------------------------------------------------
def policy_change_publish(*, policy: QuotaPolicy) -> int:
    """A policy's limits or options changed (or it was created): republish whoever it applies to."""
    return policy_publish_request(users=users_of_policy(policy=policy))


@transaction.atomic
def policy_delete(*, policy: QuotaPolicy) -> int:
    """Delete a policy and republish whoever had it (found before the outbox rows lose it)."""
    user_ids = set(users_of_policy(policy=policy).values_list("pk", flat=True))
    policy.delete()
    return policy_publish_request(users=User.objects.filter(pk__in=user_ids))


@transaction.atomic
def policy_default_set(*, policy: QuotaPolicy) -> None:
    """Make `policy` the one default, in one transaction (there is never zero or two)."""
    QuotaPolicy.objects.filter(is_default=True).exclude(pk=policy.pk).update(is_default=False)
    QuotaPolicy.objects.filter(pk=policy.pk).update(is_default=True)
    policy.is_default = True
    policy_publish_request(users=users_everyone())


def policy_default_problem(*, policy: QuotaPolicy, is_default: bool) -> str | None:
    """Why `policy` may not be saved with this `is_default`, if it may not: exactly one
    policy is the default, and it moves only with `policy_default_set`."""
    if is_default:
        other = QuotaPolicy.objects.filter(is_default=True).exclude(pk=policy.pk).first()
        if other is not None:
            return gettext(
                "“%(name)s” is already the default policy, and only one can be. "
                "Use the “Make default” action on the policy list to move it."
            ) % {"name": other.name}
    elif policy.pk and QuotaPolicy.objects.filter(pk=policy.pk, is_default=True).exists():
        return gettext(
            "There must always be a default policy. Make another policy the default instead "
            "(the “Make default” action on the policy list)."
        )
    return None


def assignment_change_publish(*, user_ids: Iterable[int] = (), group_ids: Iterable[int] = ()) -> int:
    """Allow-list entries, policy assignments or pooled budgets of these users or groups changed."""
    group_ids = [group_id for group_id in group_ids if group_id is not None]
    users = User.objects.filter(pk__in=[user_id for user_id in user_ids if user_id is not None])
    if group_ids:
        users = users | User.objects.filter(groups__pk__in=group_ids)
    return policy_publish_request(users=users.distinct())


def membership_change_publish(*, instance: Any, action: str, reverse: bool, pk_set: set[int] | None) -> int:
    """`User.groups` changed (from either side); republish the users it touched."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return 0
    if not reverse:
        return policy_publish_request(users=[instance])
    if pk_set is None:  # a group was cleared: we no longer know who was in it
        return policy_publish_request(users=users_everyone())
    return policy_publish_request(users=User.objects.filter(pk__in=pk_set))


@transaction.atomic
def group_delete(*, group: Group) -> int:
    """Delete a group (its policy assignment and allow-list go with it) and republish its members."""
    member_ids = list(group.user_set.values_list("pk", flat=True))
    group.delete()
    return policy_publish_request(users=User.objects.filter(pk__in=member_ids))


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


def user_policy_ensure(*, user: Any) -> int:
    """Publish `user`'s policy if none was ever published: a user created where no service ran
    (Django's `createsuperuser`, a script) would otherwise be refused in the chat."""
    if PolicySyncState.objects.filter(user_id=user.pk).exists():
        return 0
    return policy_publish_request(users=[user])
