from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

if TYPE_CHECKING:
    from accounts.models import User

from accounts.roles import ANALYSTS, GATEWAY_ADMINS, GOVERNED_APPS, GOVERNED_MODELS


@transaction.atomic
def roles_ensure() -> None:
    """Create the role groups and (re)grant their permissions; safe to run any number of times."""
    admins, _ = Group.objects.get_or_create(name=GATEWAY_ADMINS)
    analysts, _ = Group.objects.get_or_create(name=ANALYSTS)
    models = Q()
    for app_label, model in GOVERNED_MODELS:
        models |= Q(content_type__app_label=app_label, content_type__model=model)
    governed = Permission.objects.filter(Q(content_type__app_label__in=GOVERNED_APPS) | models)
    admins.permissions.add(*governed)
    analysts.permissions.add(*governed.filter(codename__startswith="view_"))


def user_language_set(*, user: User, language: str) -> None:
    """Keep the user's language choice (a code from settings.LANGUAGES, or "" for the browser's)."""
    user.language = language
    user.save(update_fields=["language"])


ROLE_GROUPS: tuple[str, ...] = (GATEWAY_ADMINS, ANALYSTS)


def user_staff_sync(*, user: User) -> bool:
    """Staff status follows role membership: a member of a role opens the admin (what they may
    do there comes from the role's permissions); nobody else does, except a superuser. Returns
    the status now stored."""
    staff = user.is_superuser or user.groups.filter(name__in=ROLE_GROUPS).exists()
    if user.is_staff != staff:
        user.is_staff = staff
        # update(), not save(): only this column, and no save() side effects for a membership change.
        type(user).objects.filter(pk=user.pk).update(is_staff=staff)
    return staff
