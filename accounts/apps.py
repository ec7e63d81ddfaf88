from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        # After every app's migrate, so permissions of apps migrated later are granted too.
        post_migrate.connect(_ensure_roles, dispatch_uid="accounts.roles_ensure")
        from accounts import signals  # noqa: F401 - connects staff status to role membership


def _ensure_roles(sender, **kwargs) -> None:
    from accounts.services import roles_ensure

    roles_ensure()
