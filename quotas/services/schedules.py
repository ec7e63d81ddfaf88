"""The periodic jobs the governance app needs, kept in django-celery-beat's tables."""
from __future__ import annotations


def periodic_drain_ensure() -> None:
    """Schedule the outbox drain every minute (beat) so rows left pending by an outage or a
    broker hiccup are published without anyone acting; and the expiry sweep hourly."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.update_or_create(
        name="Publish pending policy outbox rows", defaults={"task": "quotas.outbox_drain", "interval": every_minute}
    )
    PeriodicTask.objects.update_or_create(
        name="Withdraw expired prepared responses",
        defaults={"task": "quotas.prepared_expired_unpublish", "interval": hourly},
    )
