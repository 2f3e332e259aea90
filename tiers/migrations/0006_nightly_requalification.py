"""T3's safety net, as a django-celery-beat row: every night, members whose tier is not
the one their lifetime points reach under today's thresholds are moved (rules changed).
Nothing to do on most nights: a recalculation queued when thresholds are saved has
done it. It covers one whose queueing failed, or a purchase that was being recorded
with the thresholds of a moment before."""

from django.conf import settings
from django.db import migrations

NAME = "Requalify members"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="0",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "tiers.tasks.recalculate_all_tiers_task",
            "crontab": schedule,
            "description": "Daily, before degradation: moves any member whose tier is not "
            "the one today's thresholds give (usually none).",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tiers", "0005_status_grant_end_merged"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
