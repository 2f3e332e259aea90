"""The daily deletion of old uploaded import files, as a django-celery-beat row."""

from django.conf import settings
from django.db import migrations

NAME = "Delete old import files"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="50",
        hour="4",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "points.tasks.delete_old_import_files_task",
            "crontab": schedule,
            "description": "Daily: deletes the files uploaded to import (and their error "
            "reports) after IMPORT_FILE_DAYS (30 by default); the imports' records stay.",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0012_opening_balance_and_grants_permission"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
