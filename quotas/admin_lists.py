"""What the governance list pages show per row, read for the whole page at once.

A list column that runs a query per row costs 100 queries on a page of 100 rows; these
annotate the list's queryset (one query for the page) or, where the rule is Python (the
effective policy of a user), resolve the page's rows together in a fixed number of queries.
`tests/quotas/test_list_queries.py` holds every list page to a count that does not grow with rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, IntegerField, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from quotas.models import OutboxStatus, PolicyOutbox, PreparedOutbox


def _outbox_count(status: str) -> Coalesce:
    rows = (
        PolicyOutbox.objects.filter(policy=OuterRef("pk"), status=status)
        .order_by()
        .values("policy")
        .annotate(count=Count("id"))
        .values("count")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def policies_for_list(queryset: QuerySet) -> QuerySet:
    """Quota policies with their assignment counts and outbox summary (`sync_summary`)."""
    published = (
        PolicyOutbox.objects.filter(policy=OuterRef("pk"), status=OutboxStatus.DONE)
        .order_by()
        .values("policy")
        .annotate(version=Max("version"))
        .values("version")
    )
    return queryset.annotate(
        # Subqueries rather than joins: two Counts over two joins would multiply each other.
        list_group_count=Coalesce(Subquery(_count_of("group_assignments", "policy"), output_field=IntegerField()), 0),
        list_override_count=Coalesce(Subquery(_count_of("user_overrides", "policy"), output_field=IntegerField()), 0),
        list_pending=_outbox_count(OutboxStatus.PENDING),
        list_failed=_outbox_count(OutboxStatus.FAILED),
        list_published_version=Subquery(published),
    )


def _count_of(relation: str, field: str) -> QuerySet:
    from quotas.models import GroupPolicy, UserPolicyOverride

    models_by_relation: dict[str, type[GroupPolicy | UserPolicyOverride]] = {
        "group_assignments": GroupPolicy, "user_overrides": UserPolicyOverride,
    }
    model = models_by_relation[relation]
    return (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(count=Count("id"))
        .values("count")
    )


def groups_for_list(queryset: QuerySet) -> QuerySet:
    """Groups with their member count and quota policy's name."""
    return queryset.annotate(list_member_count=Count("user", distinct=True)).select_related(
        "quota_policy_assignment__policy"
    )


def prepared_for_list(queryset: QuerySet) -> QuerySet:
    """Prepared responses with their model and their latest outbox row's action and status."""
    latest = PreparedOutbox.objects.filter(prepared=OuterRef("pk")).order_by("-id")
    return queryset.select_related("model").annotate(
        list_outbox_status=Subquery(latest.values("status")[:1]),
        list_outbox_action=Subquery(latest.values("action")[:1]),
    )


def policy_names_for_users(users: Iterable[Any]) -> dict[int, str]:
    """The effective policy's name of each user, resolved for all of them at once."""
    from quotas.access_matrix import access_matrix_build

    matrix = access_matrix_build(users=users, groups=[], models=[])
    return {row.pk: row.policy.name if row.policy else "" for row in matrix.user_rows}
