"""The daily snapshot of the programme analytics, as a django-celery-beat row, and the
right to see the analytics for the Marketer group."""

from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations

NAME = "Take the daily analytics snapshot"


def create(apps, schema_editor):
    db = schema_editor.connection.alias  # `migrate --database owner` writes as the owner
    crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    schedule, _ = crontab.objects.using(db).get_or_create(
        minute="15",
        hour="0",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).get_or_create(
        name=NAME,
        defaults={
            "task": "points.tasks.take_snapshots_task",
            "crontab": schedule,
            "description": "Daily, after midnight: the day that ended (and any missed "
            "before it, and the last week again) for the programme analytics: members "
            "per tier, points issued, redeemed, expired, returned and outstanding.",
        },
    )
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=db)
        config.models_module = None
    permission = apps.get_model("auth", "Permission").objects.using(db)
    marketer, _ = apps.get_model("auth", "Group").objects.using(db).get_or_create(name="Marketer")
    marketer.permissions.add(
        permission.get(content_type__app_label="points", codename="view_analytics")
    )


def remove(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("django_celery_beat", "PeriodicTask").objects.using(db).filter(
        name=NAME
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0015_programme_analytics"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create, remove)]
