from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = _("Gateway governance")

    def ready(self) -> None:
        from quotas import signals  # noqa: F401  (user deletion and group membership: see there)
