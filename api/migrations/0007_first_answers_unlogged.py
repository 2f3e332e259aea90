"""First answers are a cache of responses (a repeat finds the transaction in the ledger
either way): on PostgreSQL their table is UNLOGGED, so keeping one adds no write-ahead
log flush to each API transaction. After a crash or on a standby the table is empty,
and a repeat then answers with the figures as they stand (docs/rules.md)."""

from django.db import migrations


def unlogged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE api_firstanswer SET UNLOGGED")


def logged(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE api_firstanswer SET LOGGED")


class Migration(migrations.Migration):
    dependencies = [("api", "0006_webhook_admin")]

    operations = [migrations.RunPython(unlogged, logged, elidable=False)]
