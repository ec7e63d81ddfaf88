"""Signal handlers: each one line that hands the change to a service.

Every change that alters someone's effective policy asks for a republish; the service works
out who is affected and skips users whose document did not change.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from quotas import services
from quotas.models import (
    GroupModelAccess,
    GroupPolicy,
    ModelCatalogueEntry,
    PreparedResponse,
    QuotaPolicy,
    UserModelAccess,
    UserPolicyOverride,
)

User = get_user_model()


@receiver([post_save, post_delete], sender=ModelCatalogueEntry, dispatch_uid="quotas.catalogue")
def catalogue_changed(sender, instance, **kwargs) -> None:
    services.catalogue_change_publish(entry=instance)


@receiver([post_save, post_delete], sender=QuotaPolicy, dispatch_uid="quotas.policy")
def policy_changed(sender, instance, **kwargs) -> None:
    services.policy_change_publish(policy=instance)


@receiver([post_save, post_delete], sender=GroupPolicy, dispatch_uid="quotas.group_policy")
@receiver([post_save, post_delete], sender=GroupModelAccess, dispatch_uid="quotas.group_access")
def group_assignment_changed(sender, instance, **kwargs) -> None:
    services.assignment_change_publish(group_id=instance.group_id, origin=kwargs.get("origin"))


@receiver([post_save, post_delete], sender=UserPolicyOverride, dispatch_uid="quotas.user_override")
@receiver([post_save, post_delete], sender=UserModelAccess, dispatch_uid="quotas.user_access")
def user_assignment_changed(sender, instance, **kwargs) -> None:
    services.assignment_change_publish(user_id=instance.user_id, origin=kwargs.get("origin"))


@receiver(post_save, sender=User, dispatch_uid="quotas.user_saved")
def user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    # A sign-in saves only last_login, which no policy depends on: skip the recompute.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    services.policy_publish_request(users=[instance])


@receiver(post_delete, sender=User, dispatch_uid="quotas.user_deleted")
def user_deleted(sender, instance, **kwargs) -> None:
    services.policy_unpublish_request(sub=instance.sub)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="quotas.membership")
def membership_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    services.membership_change_publish(instance=instance, action=action, reverse=reverse, pk_set=pk_set)


@receiver(post_delete, sender=Group, dispatch_uid="quotas.group_deleted")
def group_deleted(sender, instance, **kwargs) -> None:
    services.policy_publish_request(users=services.users_everyone())


@receiver(post_save, sender=PreparedResponse, dispatch_uid="quotas.prepared_saved")
def prepared_saved(sender, instance, **kwargs) -> None:
    services.prepared_publish_request(prepared=instance)


@receiver(post_delete, sender=PreparedResponse, dispatch_uid="quotas.prepared_deleted")
def prepared_deleted(sender, instance, **kwargs) -> None:
    services.prepared_unpublish_request(prepared=instance)
