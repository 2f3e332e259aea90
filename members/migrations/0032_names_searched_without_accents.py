"""Names searched without accents or case (core.folding): "munoz" finds Muñoz. On
PostgreSQL, the `unaccent` extension (trusted: the database's owner may create it), the
IMMUTABLE function that folds with it, and an index on each name folded, for the
admin's prefix search at a million members, in place of 0004's indexes on UPPER(name),
which the search no longer reads. SQLite folds in Python and scans."""

from django.db import migrations

from core.folding import CREATE_FOLD_FUNCTION, FOLD_FUNCTION

COLUMNS = ["first_name", "last_name"]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    schema_editor.execute(CREATE_FOLD_FUNCTION)
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS member_search_{column}")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS member_search_{column}_folded "
            f"ON members_member ({FOLD_FUNCTION}({column}) text_pattern_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS member_search_{column}_folded")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS member_search_{column} "
            f"ON members_member (UPPER({column}::text) text_pattern_ops)"
        )
    # The function goes; the extension stays (another use of it may have come since).
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FOLD_FUNCTION}(text)")


class Migration(migrations.Migration):
    dependencies = [("members", "0031_dates_from_1900")]
    operations = [migrations.RunPython(create, drop)]
