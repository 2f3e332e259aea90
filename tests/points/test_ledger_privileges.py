"""P7 on PostgreSQL as a guarantee of privileges: the application's role (granted by
`grant_app_role`) reads and appends to the ledger, and cannot change, empty or
unguard it. The tests run as the postgres superuser and connect as the roles."""

import io
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from points.models import LedgerEntry, Transaction
from points.services import adjust_points
from tests.conftest import postgres_only
from tiers.services import recalculate_all_tiers

# Data committed, so that the role's own connection sees it; the migrations' rows
# (tiers, definitions) restored after each test's flush.
pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

APP = "loyalty_test_app"

REFUSED = [
    "SET LOCAL session_replication_role = replica",
    "UPDATE points_ledgerentry SET points = 1000",
    "DELETE FROM points_ledgerentry",
    "TRUNCATE points_ledgerentry",
    "TRUNCATE members_member CASCADE",
    "TRUNCATE rewards_redemption",
    "ALTER TABLE points_ledgerentry DISABLE TRIGGER ALL",
    "DROP TRIGGER points_ledger_append_only ON points_ledgerentry",
]


def create_role(name: str) -> str:
    """A login role, once per cluster (roles outlive test databases)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN CREATE ROLE {name} LOGIN;"
            " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    return name


def connect(role: str) -> psycopg.Connection:
    """A connection of its own to the test database, as `role` (CI trusts local logins)."""
    s = connection.settings_dict
    return psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, dbname=s["NAME"], user=role)


@contextmanager
def django_as(role: str):
    """Django's own connection logs in as `role` while the block runs."""
    settings, user = connection.settings_dict, connection.settings_dict["USER"]
    connection.close()
    settings["USER"] = role
    try:
        yield
    finally:
        connection.close()
        settings["USER"] = user


@pytest.fixture
def app_role():
    call_command("grant_app_role", role=create_role(APP), stdout=io.StringIO())
    return APP


@pytest.fixture
def entry(member, staff):
    return adjust_points(member=member, points=10, reason="goodwill", by=staff)


@pytest.mark.parametrize("statement", REFUSED, ids=REFUSED)
def test_the_application_role_is_refused(app_role, entry, statement):
    with connect(app_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)

    assert LedgerEntry.objects.get().points == 10


def test_the_application_role_reads_and_appends_to_the_ledger(app_role, entry):
    columns = ", ".join(f.column for f in LedgerEntry._meta.concrete_fields if not f.primary_key)
    with connect(app_role) as conn:
        conn.execute(
            f"INSERT INTO points_ledgerentry ({columns}) SELECT {columns}"
            " FROM points_ledgerentry WHERE id = %s",
            [entry.pk],
        )
        read = conn.execute("SELECT count(*), sum(points) FROM points_ledgerentry").fetchone()

    assert read == (2, 20)
    assert LedgerEntry.objects.count() == 2


def test_the_application_role_runs_an_import(app_role, make_member, tmp_path, monkeypatch):
    make_member("M-0001")
    # chunks of 2 rows: the import refreshes the planner's statistics on the way
    monkeypatch.setattr("points.services.importing.IMPORT_CHUNK", 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE points_transaction")  # believed empty
    path = tmp_path / "transactions.csv"
    path.write_text(
        "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
        + "".join(f"P-{i},M-0001,purchase,10.00,2026-03-0{i},pos,,\n" for i in range(1, 6))
        + "R-1,M-0001,return,5.00,2026-03-07,pos,,P-1\n"
    )
    out = io.StringIO()

    with django_as(app_role):
        call_command("import_transactions", str(path), stdout=out)
        call_command("check_ledger", stdout=out)

    assert "new=6 skipped=0 errors=0" in out.getvalue()
    assert "all equal the ledger" in out.getvalue()
    assert Transaction.objects.count() == 6
    # ANALYZE by the owner's function: the role's own ANALYZE would be skipped
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'points_transaction'::regclass")
        assert cursor.fetchone()[0] >= 4


def test_the_application_role_s_tier_recalculation_keeps_the_tiers_statistics(app_role, tiers):
    """Found by a review: its ANALYZE of the tiers was skipped with a warning (only the
    owner may), and the large reads that join the tiers were planned on guesses."""

    def analysed() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'tiers_tier'"
            )
            return cursor.fetchone()[0]

    before = analysed()
    with django_as(app_role):
        recalculate_all_tiers()  # the nightly job, and after a threshold change

    assert analysed() == before + 1


def test_the_application_role_enrols_and_finds_a_member_without_accents(app_role, tiers):
    # the index of folded names (members 0032) is written, and read, by the role
    from members.models import Member
    from members.services import enroll_member

    with django_as(app_role):
        enroll_member(external_id="M-1", email="j@example.es", first_name="José", last_name="Muñoz")
        found = Member.objects.filter(last_name__folded__startswith="munoz")
        assert list(found.values_list("external_id", flat=True)) == ["M-1"]


@pytest.mark.parametrize(
    "statement", ["TRUNCATE points_ledgerentry CASCADE", "TRUNCATE members_member CASCADE"]
)
def test_the_ledger_refuses_truncate_to_a_role_granted_it_by_mistake(entry, statement):
    careless = create_role("loyalty_test_careless")
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {careless}")
    try:
        with (
            connect(careless) as conn,
            pytest.raises(
                psycopg.errors.IntegrityConstraintViolation, match="append-only: TRUNCATE refused"
            ),
        ):
            conn.execute(statement)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {careless}")

    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_no_grant_is_made_to_a_role_that_could_switch_the_guards_off():
    setter = create_role("loyalty_test_replica_setter")
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT SET ON PARAMETER session_replication_role TO {setter}")
    try:
        with pytest.raises(CommandError, match="may set session_replication_role"):
            call_command("grant_app_role", role=setter)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE SET ON PARAMETER session_replication_role FROM {setter}")
    with pytest.raises(CommandError, match="superuser"):
        call_command("grant_app_role", role=connection.settings_dict["USER"])
