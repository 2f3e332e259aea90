"""The periodic jobs as django-celery-beat rows, editable in the admin.

Crontab times are in the programme's time zone (TIME_ZONE)."""

from django.conf import settings
from django.db import migrations

# name, task, schedule (crontab minute, hour) or None for every minute, description
JOBS = [
    (
        "Degrade inactive members",
        "tiers.tasks.degrade_inactive_members_task",
        ("15", "3"),
        "Daily. Applies the degradation policy (does nothing while it is disabled).",
    ),
    (
        "Expire points",
        "points.tasks.expire_points_task",
        ("5", "0"),
        "Daily, just after midnight: processes every passed expiry cutoff.",
    ),
    (
        "Send expiry reminders",
        "points.tasks.send_expiry_reminders_task",
        ("0", "9"),
        "Daily: reminds members whose points expire at the next cutoff.",
    ),
    (
        "Send notifications",
        "members.tasks.send_notifications_task",
        None,
        "Every minute: sends the messages waiting in the outbox.",
    ),
]


def create_jobs(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    for name, task, at, description in JOBS:
        if at is None:
            schedule = {
                "interval": IntervalSchedule.objects.using(db).get_or_create(
                    every=1, period="minutes"
                )[0]
            }
        else:
            minute, hour = at
            schedule = {
                "crontab": CrontabSchedule.objects.using(db).get_or_create(
                    minute=minute,
                    hour=hour,
                    day_of_week="*",
                    day_of_month="*",
                    month_of_year="*",
                    timezone=settings.TIME_ZONE,
                )[0]
            }
        PeriodicTask.objects.using(db).get_or_create(
            name=name, defaults={"task": task, "description": description, **schedule}
        )


def remove_jobs(apps, schema_editor):
    names = [name for name, *_ in JOBS]
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0003_ledger_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_jobs, remove_jobs)]
