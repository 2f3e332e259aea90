"""Room on each page of the member table, so that mass updates of columns without an
index (the effective tier, balances) are HOT updates on PostgreSQL."""

from django.db import migrations


def set_fillfactor(value):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE members_member SET (fillfactor = {value})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("members", "0001_initial")]
    operations = [migrations.RunPython(set_fillfactor(80), set_fillfactor(100))]
