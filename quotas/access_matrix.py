"""Who can use which model: users and groups by enabled models, each cell naming why.

A fixed number of queries whatever the number of users, groups and models: every relation is
read once into memory and joined here, and the policy of each listed user is resolved with the
same rule as `selectors.policy_resolve` (a test holds the two to the same answers).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from quotas.models import (
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)

User = get_user_model()
OPEN_TO_ALL = "all"
DIRECT = "direct"
GROUP = "group"


@dataclass(frozen=True)
class Grant:
    """One reason a row may use a model: open to everyone, a direct grant, or a group's allow-list."""

    kind: str  # OPEN_TO_ALL | DIRECT | GROUP
    group_name: str = ""

    @property
    def label(self) -> str:
        if self.kind == OPEN_TO_ALL:
            return _("open to all")
        if self.kind == DIRECT:
            return _("direct grant")
        return _("group: %(name)s") % {"name": self.group_name}


@dataclass
class AccessRow:
    kind: str  # "user" | "group"
    name: str
    pk: int
    policy: QuotaPolicy | None
    # Why the row has no access at all (account disabled, no policy), else "".
    denied: str = ""
    cells: list[tuple[Grant, ...]] = field(default_factory=list)

    @property
    def allowed_count(self) -> int:
        return sum(1 for cell in self.cells if cell) if not self.denied else 0


@dataclass
class AccessMatrix:
    models: list[ModelCatalogueEntry]
    group_rows: list[AccessRow]
    user_rows: list[AccessRow]


@dataclass
class _Relations:
    """Every relation the matrix joins, each read in one query."""

    group_models: dict[int, set[int]]
    direct_models: dict[int, set[int]]
    memberships: dict[int, list[int]]
    group_names: dict[int, str]
    policies: dict[int, QuotaPolicy]
    group_policy: dict[int, int]
    overrides: dict[int, int]

    @classmethod
    def load(cls, *, user_ids: list[int]) -> _Relations:
        group_models: dict[int, set[int]] = defaultdict(set)
        for group_id, model_id in GroupModelAccess.objects.values_list("group_id", "model_id"):
            group_models[group_id].add(model_id)
        direct_models: dict[int, set[int]] = defaultdict(set)
        for user_id, model_id in UserModelAccess.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "model_id"
        ):
            direct_models[user_id].add(model_id)
        memberships: dict[int, list[int]] = defaultdict(list)
        members = User.groups.through.objects.filter(user_id__in=user_ids)
        for user_id, group_id in members.values_list("user_id", "group_id"):
            memberships[user_id].append(group_id)
        return cls(
            group_models=group_models,
            direct_models=direct_models,
            memberships=memberships,
            group_names=dict(Group.objects.values_list("pk", "name")),
            policies={policy.pk: policy for policy in QuotaPolicy.objects.all()},
            group_policy=dict(GroupPolicy.objects.values_list("group_id", "policy_id")),
            overrides=dict(UserPolicyOverride.objects.filter(user_id__in=user_ids).values_list("user_id", "policy_id")),
        )

    def group_grants(self, group_id: int, entry: ModelCatalogueEntry) -> tuple[Grant, ...]:
        return (Grant(GROUP, self.group_names[group_id]),) if entry.pk in self.group_models[group_id] else ()

    def _policy(self, policy_id: int | None) -> QuotaPolicy | None:
        return None if policy_id is None else self.policies.get(policy_id)

    def group_policy_of(self, group_id: int) -> QuotaPolicy | None:
        return self._policy(self.group_policy.get(group_id))

    def user_policy(self, user_id: int, user_groups: list[int]) -> QuotaPolicy | None:
        default = next((policy for policy in self.policies.values() if policy.is_default), None)
        return _policy_for(
            override=self._policy(self.overrides.get(user_id)),
            group_policies=[self.policies[self.group_policy[pk]] for pk in user_groups if pk in self.group_policy],
            default=default,
        )


def _open(entry: ModelCatalogueEntry) -> tuple[Grant, ...]:
    return (Grant(OPEN_TO_ALL),) if entry.available_to_all else ()


def access_matrix_build(
    *,
    users: QuerySet | Iterable[Any],
    groups: QuerySet | Iterable[Group],
    models: QuerySet | Iterable[ModelCatalogueEntry] | None = None,
) -> AccessMatrix:
    """The matrix for the given users and groups (already filtered and paged by the caller)."""
    catalogue = list(models if models is not None else ModelCatalogueEntry.objects.filter(enabled=True))
    users = list(users)
    relations = _Relations.load(user_ids=[user.pk for user in users])
    group_rows = [
        AccessRow(
            kind="group",
            name=group.name,
            pk=group.pk,
            policy=relations.group_policy_of(group.pk),
            cells=[_open(entry) + relations.group_grants(group.pk, entry) for entry in catalogue],
        )
        for group in groups
    ]
    return AccessMatrix(
        models=catalogue, group_rows=group_rows, user_rows=[_user_row(user, catalogue, relations) for user in users]
    )


def _user_row(user: Any, catalogue: list[ModelCatalogueEntry], relations: _Relations) -> AccessRow:
    user_groups = sorted(relations.memberships[user.pk], key=lambda pk: relations.group_names[pk])
    policy = relations.user_policy(user.pk, user_groups)
    row = AccessRow(kind="user", name=user.get_username(), pk=user.pk, policy=policy)
    if not user.is_active:
        row.denied = _("account disabled")
    elif policy is None:
        row.denied = _("no policy: access denied")
    for entry in catalogue:
        grants = _open(entry) + ((Grant(DIRECT),) if entry.pk in relations.direct_models[user.pk] else ())
        for group_id in user_groups:
            grants += relations.group_grants(group_id, entry)
        row.cells.append(grants)
    return row


def _policy_for(
    *, override: QuotaPolicy | None, group_policies: list[QuotaPolicy], default: QuotaPolicy | None
) -> QuotaPolicy | None:
    """`quotas.models.RESOLUTION_RULE`, on policies already in memory."""
    if override is not None:
        return override
    if group_policies:
        unique = {policy.pk: policy for policy in group_policies}.values()
        # As in selectors.policy_resolve: ties keep the alphabetically first name.
        return max(sorted(unique, key=lambda p: p.name, reverse=True), key=lambda p: p.generosity)
    return default


def access_users_filter(*, user_query: str = "", group_id: int | None = None, model_id: int | None = None) -> QuerySet:
    """Users to list: matching the name, in the group, or able to use the model (by allow-list)."""
    users = User.objects.order_by("username")
    if user_query:
        users = users.filter(Q(username__icontains=user_query) | Q(email__icontains=user_query))
    if group_id is not None:
        users = users.filter(groups__pk=group_id)
    if model_id is not None:
        entry = ModelCatalogueEntry.objects.filter(pk=model_id).first()
        if entry is not None and not entry.available_to_all:
            users = users.filter(Q(model_access__model_id=model_id) | Q(groups__model_access__model_id=model_id))
    return users.distinct()


def access_groups_filter(*, group_id: int | None = None, model_id: int | None = None) -> QuerySet:
    groups = Group.objects.order_by("name")
    if group_id is not None:
        groups = groups.filter(pk=group_id)
    if model_id is not None:
        entry = ModelCatalogueEntry.objects.filter(pk=model_id).first()
        if entry is not None and not entry.available_to_all:
            groups = groups.filter(model_access__model_id=model_id)
    return groups
