"""Member search in the CX Manager at a million members: customer code, e-mail and
names by case-insensitive prefix. Django's `istartswith` reads
UPPER(column) LIKE 'TERM%', which PostgreSQL answers from an index on UPPER(column)
with text_pattern_ops (whatever the database's collation). SQLite scans; it holds
development data only."""

from django.db import migrations

COLUMNS = ["external_id", "email", "first_name", "last_name"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in COLUMNS:
            schema_editor.execute(
                f"CREATE INDEX IF NOT EXISTS member_search_{column} "
                f"ON members_member (UPPER({column}::text) text_pattern_ops)"
            )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for column in COLUMNS:
            schema_editor.execute(f"DROP INDEX IF EXISTS member_search_{column}")


class Migration(migrations.Migration):
    dependencies = [("members", "0003_member_lifetime_points")]
    operations = [migrations.RunPython(create, drop)]
