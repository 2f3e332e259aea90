"""The daily job that removes the customer code kept by an erasure's member.erased
event still waiting, after ERASED_CODE_DAYS, for an endpoint switched off, as a
django-celery-beat row (in the programme's time zone), editable in the admin."""

from django.conf import settings
from django.db import migrations

NAME = "Remove erased customers' codes from waiting webhooks"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="45",
        hour="4",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "api.tasks.give_up_erased_codes_task",
            "crontab": schedule,
            "description": "Daily: a member.erased event that an endpoint switched off has "
            "not taken in 30 days is given up, and the customer code it keeps removed.",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0010_withdrawn_reminders_name_no_code"),
        ("core", "0007_webhook_delivery_data"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
