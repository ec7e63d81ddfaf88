"""Role membership changes staff status, wherever the membership changes (the user's page, the
group's page, a script): the one rule lives in `accounts.services.user_staff_sync`.

Kept as a signal: `User.groups` is django.contrib.auth's relation, written by Django's own user
and group forms (`save_m2m`, from either side) and by any script; no service of ours sees every
membership change. Changes made in our own admin also call the service explicitly
(`accounts.admin.UserAdmin.save_related`), e.g. when only superuser status changed."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from accounts.models import User
from accounts.services import ROLE_GROUPS, user_staff_sync

# Members of a role group being cleared from the group's side, kept between pre_ and post_clear.
_CLEARED_MEMBERS = "_role_members_before_clear"


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="accounts.staff_follows_roles")
def staff_follows_roles(
    sender: Any, instance: User | Group, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if not reverse:  # user.groups changed
        assert isinstance(instance, User)
        if action in ("post_add", "post_remove", "post_clear"):
            user_staff_sync(user=instance)
        return
    assert isinstance(instance, Group)
    if instance.name not in ROLE_GROUPS:  # group.user_set changed: only roles matter
        return
    if action == "pre_clear":
        setattr(instance, _CLEARED_MEMBERS, list(instance.user_set.values_list("pk", flat=True)))
        return
    if action == "post_clear":
        pk_set = set(getattr(instance, _CLEARED_MEMBERS, []))
    elif action not in ("post_add", "post_remove"):
        return
    for user in User.objects.filter(pk__in=pk_set or ()):
        user_staff_sync(user=user)
