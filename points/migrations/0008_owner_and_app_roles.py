"""What the application's role needs on PostgreSQL once it no longer owns the tables
(docs/deploy.md, `grant_app_role`): a TRUNCATE guard on the ledger (P7) and a way to
refresh the planner's statistics."""

from django.db import migrations

FORBID = """
CREATE OR REPLACE FUNCTION points_ledger_no_truncate() RETURNS trigger AS $$
BEGIN
    -- Superusers pass: they can drop any trigger anyway, and Django's test flush
    -- empties every table as one. A role granted TRUNCATE by mistake does not.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'points_ledgerentry is append-only: TRUNCATE refused'
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER points_ledger_no_truncate
    BEFORE TRUNCATE ON points_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_no_truncate();
"""

# Only a table's owner may ANALYZE it, and the import refreshes the statistics of the
# tables it fills mid-transaction (core.bulk.CopyBehind). SECURITY DEFINER: it runs as the
# role that migrates, the owner; EXECUTE is granted by `grant_app_role` alone.
ANALYZE = """
CREATE OR REPLACE FUNCTION loyalty_analyze(target regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('ANALYZE %s', target);
END;
$$;
REVOKE ALL ON FUNCTION loyalty_analyze(regclass) FROM PUBLIC;
"""

ALLOW = """
DROP TRIGGER IF EXISTS points_ledger_no_truncate ON points_ledgerentry;
DROP FUNCTION IF EXISTS points_ledger_no_truncate();
DROP FUNCTION IF EXISTS loyalty_analyze(regclass);
"""


def run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("points", "0007_fewer_transaction_indexes")]
    operations = [migrations.RunPython(run(FORBID + ANALYZE), run(ALLOW))]
