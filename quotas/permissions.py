"""What Django's store calls need from IAM (plain Python: deploy/ imports it without Django).

The control plane publishes and withdraws policies, lists them for the drift check, shows and
resets usage windows, purges the answer cache and manages prepared answers, all through the
data plane's store; these are the store operations `quotas/` calls.
"""
from __future__ import annotations

from dataplane.permissions import Need, Resource, need
from dataplane.stores.dynamodb import store_needs

# A test reads `quotas/*.py` and fails when this list and the calls disagree.
CONTROL_PLANE_STORE_OPERATIONS = (
    "policy_put",
    "policy_delete",
    "policy_list",
    "usage_read",
    "usage_list",
    "usage_reset",
    "cache_purge",
    "prepared_put",
    "prepared_delete",
)


def control_plane_store_needs() -> tuple[Need, ...]:
    return store_needs(CONTROL_PLANE_STORE_OPERATIONS)


# `quotas.budget_alerts` publishes each alert to the stack's topic.
BUDGET_ALERT_NEEDS: tuple[Need, ...] = (
    need(Resource.BUDGET_ALERTS_TOPIC, "sns:Publish", why="budget alerts to operators' subscriptions"),
)
