"""Schedule the daily history purge (beat, editable in the admin like the other schedules)."""

from django.db import migrations

TASK_NAME = "Delete expired chat history"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # 03:17 UTC: a quiet hour, off the top of the hour other jobs favour.
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="17", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": "chat.history_expired_purge",
            "crontab": nightly,
            "interval": None,
            "args": "[]",
            "enabled": True,
            "description": "Deletes conversations older than their owner's policy keeps them, and private ones "
            "left by sessions that ended without a sign-out.",
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_conversation_history"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
