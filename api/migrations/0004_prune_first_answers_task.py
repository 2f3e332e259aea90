"""The daily pruning of the API's first answers, as a django-celery-beat row (in the
programme's time zone), editable in the admin."""

from django.conf import settings
from django.db import migrations

NAME = "Prune the API's first answers"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="40",
        hour="4",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "api.tasks.prune_first_answers_task",
            "crontab": schedule,
            "description": "Daily: drops the first answers kept for repeats after "
            "API_REPEAT_ANSWER_DAYS (30 by default).",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0003_first_answer_created_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
