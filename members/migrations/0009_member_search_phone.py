"""Members found by the start of their phone number (as stored), from an index on
PostgreSQL, as Django's `startswith` reads it: phone::text LIKE 'TERM%'."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS member_search_phone "
            "ON members_member ((phone::text) text_pattern_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS member_search_phone")


class Migration(migrations.Migration):
    dependencies = [("members", "0008_export_permission")]
    operations = [migrations.RunPython(create, drop)]
