from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.roles import ANALYSTS, GATEWAY_ADMINS, GOVERNED_APPS


@transaction.atomic
def roles_ensure() -> None:
    """Create the role groups and (re)grant their permissions; safe to run any number of times."""
    admins, _ = Group.objects.get_or_create(name=GATEWAY_ADMINS)
    analysts, _ = Group.objects.get_or_create(name=ANALYSTS)
    governed = Permission.objects.filter(content_type__app_label__in=GOVERNED_APPS)
    admins.permissions.add(*governed)
    analysts.permissions.add(*governed.filter(codename__startswith="view_"))
