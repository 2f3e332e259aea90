"""On PostgreSQL the database itself refuses UPDATE and DELETE of ledger rows (P7)."""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION points_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'points_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER points_ledger_append_only
    BEFORE UPDATE OR DELETE ON points_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION points_ledger_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledgerentry;
DROP FUNCTION IF EXISTS points_ledger_append_only();
"""


def run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("points", "0002_standard_definitions")]
    operations = [migrations.RunPython(run(FORBID), run(ALLOW))]
