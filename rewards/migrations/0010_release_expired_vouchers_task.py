"""The nightly job that gives back the units of vouchers that expired unused (W6), as a
django-celery-beat row (in the programme's time zone), editable in the admin."""

from django.conf import settings
from django.db import migrations

NAME = "Return expired vouchers' units to stock"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="10",
        hour="0",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "rewards.tasks.release_expired_vouchers_task",
            "crontab": schedule,
            "description": "Daily, after midnight: the units of the vouchers whose last day "
            "has passed unused go back to their rewards' stock (their points stay spent).",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0009_redemption_unit_returned_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
