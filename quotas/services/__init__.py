"""Writes of the governance app, one module per job:

- `policies`: who a change affects, and the policy outbox rows that carry their documents;
- `catalogue`: model catalogue changes, republished to every user by a Celery task;
- `prepared`: saving prepared responses and their prepared outbox rows;
- `outbox`: the one drain loop that carries both outboxes to the store after commit;
- `store_admin`: operations on the store's live data (reset a usage window, purge the cache);
- `resync`: the full republish behind `manage.py sync_policies`;
- `schedules`: the periodic jobs in django-celery-beat.

The admin, the commands and the allauth adapters call these; no model signal does, except the
few receivers in `quotas.signals` for changes that come from code this app does not own.
The names below are the public ones, importable as `quotas.services.<name>`.
"""
from quotas.services.catalogue import (
    catalogue_enabled_set,
    catalogue_entry_delete,
    catalogue_republish,
    catalogue_republish_request,
)
from quotas.services.outbox import DrainResult, outbox_drain, outbox_drain_on_commit
from quotas.services.policies import (
    assignment_change_publish,
    group_delete,
    membership_change_publish,
    outbox_failed_retry,
    policies_republish,
    policy_change_publish,
    policy_default_problem,
    policy_default_set,
    policy_delete,
    policy_publish_request,
    policy_unpublish_request,
    user_policy_ensure,
    users_everyone,
    users_of_policy,
)
from quotas.services.prepared import (
    prepared_delete,
    prepared_expired_unpublish,
    prepared_is_live,
    prepared_publish_all,
    prepared_publish_request,
    prepared_purge,
    prepared_question_problem,
    prepared_save,
    prepared_unpublish_request,
)
from quotas.services.resync import SyncResult, policy_sync_all
from quotas.services.schedules import periodic_drain_ensure
from quotas.services.store_admin import answer_cache_purge, usage_window_reset

__all__ = [
    "DrainResult",
    "SyncResult",
    "answer_cache_purge",
    "assignment_change_publish",
    "catalogue_enabled_set",
    "catalogue_entry_delete",
    "catalogue_republish",
    "catalogue_republish_request",
    "group_delete",
    "membership_change_publish",
    "outbox_drain",
    "outbox_drain_on_commit",
    "outbox_failed_retry",
    "periodic_drain_ensure",
    "policies_republish",
    "policy_change_publish",
    "policy_default_problem",
    "policy_default_set",
    "policy_delete",
    "policy_publish_request",
    "policy_sync_all",
    "policy_unpublish_request",
    "prepared_delete",
    "prepared_expired_unpublish",
    "prepared_is_live",
    "prepared_publish_all",
    "prepared_publish_request",
    "prepared_purge",
    "prepared_question_problem",
    "prepared_save",
    "prepared_unpublish_request",
    "usage_window_reset",
    "user_policy_ensure",
    "users_everyone",
    "users_of_policy",
]
