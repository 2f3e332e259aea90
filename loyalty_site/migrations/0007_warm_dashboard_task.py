"""The dashboard's kept figures computed ahead of the first visit, every five minutes
(nothing when they are up to date), as a django-celery-beat row editable in the admin."""

from django.db import migrations

NAME = "Refresh the dashboard's figures"


def create_job(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    every_five, _ = interval.objects.using(db).get_or_create(every=5, period="minutes")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "loyalty_site.tasks.warm_dashboard_task",
            "interval": every_five,
            "description": "Every 5 minutes: computes the dashboard's members per tier and "
            "points at stake when an import, a job or a change made them out of date.",
        },
    )


def remove_job(apps, schema_editor):
    tasks = apps.get_model("django_celery_beat", "PeriodicTask").objects
    tasks.using(schema_editor.connection.alias).filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0006_operations_group"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_job, remove_job)]
