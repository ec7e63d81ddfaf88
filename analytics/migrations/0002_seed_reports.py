"""Seed the built-in reports, their daily schedules and the stale-run reaper (see analytics.seed)."""
from django.db import migrations


def seed(apps, schema_editor):  # noqa: ANN001
    from analytics.seed import reports_seed

    reports_seed(apps, refresh=True)


def unseed(apps, schema_editor):  # noqa: ANN001
    from analytics.catalogue import REPORTS
    from analytics.schedules import REAP_TASK_NAME, periodic_task_name

    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    slugs = [report["slug"] for report in REPORTS]
    PeriodicTask.objects.filter(name__in=[periodic_task_name(slug) for slug in slugs] + [REAP_TASK_NAME]).delete()
    apps.get_model("analytics", "ReportDefinition").objects.filter(slug__in=slugs).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
