from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Usage analytics")

    def ready(self) -> None:
        # Re-seed after every migrate and flush (tests flush between transactional tests).
        post_migrate.connect(_seed_reports, sender=self, dispatch_uid="analytics.reports_seed")


def _seed_reports(sender, using="default", **kwargs) -> None:
    from django.apps import apps
    from django.db import connections

    if "analytics_reportdefinition" not in connections[using].introspection.table_names():
        return  # migrated backwards past the analytics tables
    from analytics.seed import reports_seed

    reports_seed(apps)
