"""The dashboard's figures job runs every minute (it was every five): it takes the kept
figures again within a minute of an import, a job or a change of the programme, and
costs a few queries when they are up to date. A row an operator has set to another
interval is left as it is."""

from django.db import migrations

NAME = "Refresh the dashboard's figures"
DESCRIPTION = (
    "Every minute: computes the dashboard's members per tier and points at stake (and "
    "the expiry preview) when an import, a job or a change made them out of date, or "
    "when they are 9 minutes old."
)
OLD_DESCRIPTION = (
    "Every 5 minutes: computes the dashboard's members per tier and points at stake when "
    "an import, a job or a change made them out of date."
)


def every(minutes, description, was_minutes):
    def change(apps, schema_editor):
        db = schema_editor.connection.alias
        interval = apps.get_model("django_celery_beat", "IntervalSchedule")
        task = (
            apps.get_model("django_celery_beat", "PeriodicTask")
            .objects.using(db)
            .filter(name=NAME, interval__every=was_minutes, interval__period="minutes")
            .first()
        )
        if task is None:
            return
        task.interval, _ = interval.objects.using(db).get_or_create(
            every=minutes, period="minutes"
        )
        task.description = description
        task.save()

    return change


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty_site", "0015_erased_freeze_reasons_out_of_history"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [
        migrations.RunPython(every(1, DESCRIPTION, 5), every(5, OLD_DESCRIPTION, 1)),
    ]
