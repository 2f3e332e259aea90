"""What the application's database role may do on PostgreSQL (P7, docs/deploy.md).

Run as the tables' owner after every migrate: `grant_app_role --database owner`. The
role (the user of DATABASES["default"], or --role) reads and writes the project's
tables but the ledger, which it only reads and appends to. It may empty, alter or own
none of them, so it cannot switch the ledger's triggers off. Everything is revoked
first, in the same transaction: a rerun leaves exactly these grants."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.recorder import MigrationRecorder

from points.models import LedgerEntry

FUNCTIONS = ["loyalty_analyze(regclass)"]  # points migration 0008: ANALYZE as the owner


class Command(BaseCommand):
    help = "Grant the application's database role exactly what it needs (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="Connect as this alias: the owner."
        )
        parser.add_argument("--role", help='Default: the user of DATABASES["default"].')

    def handle(self, *, database, role, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            self.stdout.write(f"{connection.vendor} has no roles: nothing to grant.")
            return
        role = role or connections[DEFAULT_DB_ALIAS].settings_dict["USER"]
        if not role:
            raise CommandError("Name the application's role: --role, or a user in DATABASE_URL.")
        q = connection.ops.quote_name
        ledger = LedgerEntry._meta.db_table
        migrations = MigrationRecorder.Migration._meta.db_table
        with transaction.atomic(using=database), connection.cursor() as cursor:
            tables = connection.introspection.django_table_names(
                only_existing=True, include_views=False
            )
            if refused := _refusal(connection, cursor, role, tables):
                raise CommandError(refused)
            sequences = [
                s["name"] for t in tables for s in connection.introspection.get_sequences(cursor, t)
            ]
            others = ", ".join(q(t) for t in tables if t != ledger)
            every, seqs = ", ".join(map(q, [*tables, migrations])), ", ".join(map(q, sequences))
            functions, to = ", ".join(FUNCTIONS), q(role)
            for statement in [
                f"REVOKE ALL ON TABLE {every} FROM {to}",
                f"REVOKE ALL ON SEQUENCE {seqs} FROM {to}",
                f"REVOKE ALL ON FUNCTION {functions} FROM {to}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {others} TO {to}",
                f"GRANT SELECT, INSERT ON TABLE {q(ledger)} TO {to}",
                f"GRANT SELECT ON TABLE {q(migrations)} TO {to}",  # it never migrates
                f"GRANT USAGE, SELECT ON SEQUENCE {seqs} TO {to}",
                f"GRANT EXECUTE ON FUNCTION {functions} TO {to}",
            ]:
                cursor.execute(statement)
        self.stdout.write(
            f"{role}: {ledger} read and append only; {len(tables) - 1} other tables read and"
            f" write; {len(sequences)} sequences; {len(FUNCTIONS)} function. No TRUNCATE,"
            " no ownership."
        )


def _refusal(connection, cursor, role, tables) -> str:
    """Why no grant would hold the role to them; empty when nothing stands in the way."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
    found = cursor.fetchone()
    if found is None:
        return f"There is no role {role}: create it first (docs/deploy.md)."
    if found[0]:
        return f"{role} is a superuser: no grant limits it. Run the application as another role."
    problems = []
    cursor.execute(
        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
        " WHERE oid = ANY(%s::regclass[]) AND pg_has_role(%s, relowner, 'MEMBER')",
        [tables, role],
    )
    if owners := [owner for (owner,) in cursor.fetchall()]:
        problems.append(f"it owns the tables (as {', '.join(owners)}): migrate as another role")
    if connection.pg_version >= 150000:
        cursor.execute(
            "SELECT has_parameter_privilege(%s, 'session_replication_role', 'SET')", [role]
        )
        if cursor.fetchone()[0]:
            problems.append(
                "it may set session_replication_role (as a superuser:"
                f" REVOKE SET ON PARAMETER session_replication_role FROM {role})"
            )
    if problems:
        return f"{role} could switch the ledger's guards off: {'; '.join(problems)}."
    return ""
