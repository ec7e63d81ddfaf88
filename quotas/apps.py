from django.apps import AppConfig


class QuotasConfig(AppConfig):
    name = "quotas"
    verbose_name = "Gateway governance"

    def ready(self) -> None:
        from quotas import signals  # noqa: F401  (user deletion and group membership: see there)
