"""The webhook sender, as a django-celery-beat row, editable in the admin."""

from django.db import migrations

NAME = "Send webhooks"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    schedule, _ = interval.objects.using(db).get_or_create(every=5, period="seconds")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "api.tasks.send_webhooks_task",
            "interval": schedule,
            # A tick not started within its interval is dropped: the next one does it.
            "expire_seconds": 5,
            "description": "Every 5 seconds: sends due webhook deliveries, one sender "
            "per endpoint.",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0004_prune_first_answers_task"),
        ("core", "0003_webhooks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
