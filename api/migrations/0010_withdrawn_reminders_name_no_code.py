"""Expiry reminders withdrawn by a merge said why with both customer codes ("M-08812 was
merged into M-20417"), which an erasure left behind on the Webhook deliveries page; they
now say it without them, as the merge writes it since."""

from django.db import migrations

PREFIX = "Not sent: the reminder was dropped ("
MERGED = "Not sent: the reminder was dropped (the account was merged into another)."


def name_no_code(apps, schema_editor):
    deliveries = apps.get_model("core", "WebhookDelivery").objects
    deliveries.using(schema_editor.connection.alias).filter(
        status="failed",
        type="points.expiring",
        last_error__startswith=PREFIX,
        last_error__contains=" was merged into ",
    ).update(last_error=MERGED)


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0009_key_account_names"),
        ("core", "0006_import_batch_progress_in_cache"),
    ]
    operations = [migrations.RunPython(name_no_code, migrations.RunPython.noop)]
