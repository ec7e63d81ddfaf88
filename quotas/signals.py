"""The two changes that reach governance from code this app does not own.

Everything the governance app changes itself (policies, assignments, allow-lists, the catalogue,
prepared answers, groups deleted in its admin) calls `quotas.services` explicitly. Only these
stay signals, each for the reason given on it.
"""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

from quotas.services.policies import membership_change_publish, policy_unpublish_request

User = get_user_model()


# Kept as a signal: a user is deleted by the accounts admin, by allauth's account removal, by a
# cascade or by a script; none of them is governance code, and a deleted user's policy must
# leave the store whichever it was.
@receiver(post_delete, sender=User, dispatch_uid="quotas.user_deleted")
def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    policy_unpublish_request(sub=instance.sub)


# Kept as a signal: `User.groups` is django.contrib.auth's relation, written by Django's user
# form (`save_m2m`), from either side (`group.user_set`), and by scripts and other apps
# (`accounts`' role tooling, `ensure_admin`); there is no service every membership change passes
# through, and a missed one would leave a user on the wrong policy.
@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="quotas.membership")
def membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    membership_change_publish(instance=instance, action=action, reverse=reverse, pk_set=pk_set)
