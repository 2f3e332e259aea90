"""The CSV import of transactions: all or nothing, through the earning rules."""

import io
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Member
from points.models import LedgerEntry, PointDefinition, Transaction
from points.resources import read_transactions
from points.services import import_transactions
from tests.conftest import (
    at,
    earned,
    earning_at_the_bounds,
    postgres_only,
    run_together,
    summary,
)
from tiers.models import DegradationPolicy
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db
HEADER = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"


def run(text, *, dry_run=False, bom=False, now=None):
    data = (("\ufeff" if bom else "") + HEADER + text).encode()
    rows, errors = read_transactions(io.BytesIO(data))
    return import_transactions(rows, errors=errors, dry_run=dry_run, now=now)


def state():
    return (
        Transaction.objects.count(),
        LedgerEntry.objects.count(),
        list(Member.objects.order_by("pk").values_list("points_balance", "lifetime_points")),
    )


def test_a_file_imports_purchases_and_a_return_of_a_purchase_in_the_same_file(alice):
    report = run(
        "T-1001,M-0001,purchase,120.50,2026-11-01T10:00:00+01:00,pos,STORE-12,\n"
        "T-1002,M-0001,return,20.00,2026-11-03,ecommerce,,T-1001\n"
    )
    assert (report.new, report.skipped, report.errors) == (2, 0, [])
    assert earned(Transaction.objects.get(external_id="T-1001")) == 120
    assert earned(Transaction.objects.get(external_id="T-1002")) == -20
    assert summary(alice)["lifetime"] == 100
    purchase = Transaction.objects.get(external_id="T-1001")
    assert (purchase.channel, purchase.store) == ("pos", "STORE-12")
    call_command("check_ledger")


def test_a_bom_and_a_date_without_time_are_accepted(alice):
    report = run("T-1,M-0001,purchase,10,2026-03-29,,,\n", bom=True)
    assert report.errors == [] and report.new == 1
    txn = Transaction.objects.get(external_id="T-1")
    assert txn.occurred_at == at("2026-03-29", 0)  # midnight in the programme's time zone
    assert txn.channel == "import"


@pytest.mark.parametrize(
    "day, first_moment",
    [
        ("2026-03-08", "2026-03-08T01:00:00-04:00"),  # the clocks skip midnight
        ("2026-11-01", "2026-11-01T00:00:00-04:00"),  # midnight twice: the first
    ],
)
def test_a_date_alone_is_its_day_s_first_moment_where_the_clocks_change_at_midnight(
    alice, settings, day, first_moment
):
    """A store's daily file dated the night Cuba's clocks change: the date names a day,
    which always has a start, so the rows import (the offset asked of a time alone
    cannot be written for a date)."""
    settings.TIME_ZONE = "America/Havana"
    report = run(f"T-1,M-0001,purchase,10,{day},,,\n")
    assert report.errors == [] and report.new == 1
    txn = Transaction.objects.get(external_id="T-1")
    assert txn.occurred_at == datetime.fromisoformat(first_moment)


def test_rows_apply_in_time_order_so_crossing_silver_mid_file_earns_x1_5_later(alice):
    report = run(
        "T-3,M-0001,purchase,100,2026-03-03,,,\n"  # after the crossing, though listed first
        "T-1,M-0001,purchase,990,2026-03-01,,,\n"
        "T-2,M-0001,purchase,10,2026-03-02,,,\n"
    )
    assert report.errors == [] and report.tier_changes == 1
    assert earned(Transaction.objects.get(external_id="T-2")) == 10
    assert earned(Transaction.objects.get(external_id="T-3")) == 150
    assert LedgerEntry.objects.filter(member=alice, kind="bonus", points=100).count() == 1
    assert summary(alice)["qualified_tier"].code == "silver"


def test_a_purchase_restores_a_degraded_member_and_earns_at_the_restored_tier(alice, buy):
    buy(alice, "3000", when=at("2026-01-01"))
    DegradationPolicy.objects.update(enabled=True)
    degrade_inactive_members(now=at("2026-04-15"))
    assert summary(alice)["effective_tier"].code == "silver"
    run("T-9,M-0001,purchase,100,2026-04-16,,,\n", now=at("2026-04-16"))
    assert summary(alice)["effective_tier"].code == "gold"
    assert earned(Transaction.objects.get(external_id="T-9")) == 200


def test_a_return_of_an_earlier_purchase_uses_its_points(alice, buy):
    buy(alice, "1000", when=at("2026-03-01"), external_id="P-OLD")  # Bronze x1 -> Silver
    run("R-1,M-0001,return,500,2026-03-05,,,P-OLD\n")
    assert earned(Transaction.objects.get(external_id="R-1")) == -500
    assert summary(alice)["qualified_tier"].code == "bronze"


def test_reimporting_the_same_file_writes_nothing_and_skips_every_row(alice):
    text = "T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0001,return,5,2026-03-02,,,T-1\n"
    run(text)
    before = state()
    report = run(text)
    assert (report.new, report.skipped, report.errors) == (0, 2, [])
    assert state() == before


@pytest.mark.parametrize(
    "line, column, reason",
    [
        ("T-1,M-9999,purchase,10,2026-03-01,,,", "member", "no member with customer code"),
        ("T-1,M-0001,refund,10,2026-03-01,,,", "kind", "unknown kind"),
        ("T-1,M-0001,purchase,-5,2026-03-01,,,", "amount", "must be positive"),
        ("T-1,M-0001,purchase,0,2026-03-01,,,", "amount", "must be positive"),
        ("T-1,M-0001,purchase,10.005,2026-03-01,,,", "amount", "more than two decimals"),
        ("T-1,M-0001,purchase,ten,2026-03-01,,,", "amount", "is not an amount"),
        ("T-1,M-0001,purchase,10,2026-13-01,,,", "occurred_at", "is not a date (2026-11-01)"),
        ("T-1,M-0001,purchase,10,,,,", "occurred_at", "required"),
        # Local times the clock change skips or repeats: which moment is meant is unknown.
        ("T-1,M-0001,purchase,10,2026-03-29T02:30:00,,,", "occurred_at", "does not exist"),
        ("T-1,M-0001,purchase,10,2026-10-25T02:30:00,,,", "occurred_at", "happened twice"),
        ("T-1,M-0001,purchase,10,2026-03-01,fax,,", "channel", "unknown channel"),
        ("T-1,M-0001,return,10,2026-03-01,,,", "original_external_id", "must name its purchase"),
        ("T-1,M-0001,return,10,2026-03-01,,,NOPE", "original_external_id", "has no purchase"),
        ("T-1,M-0001,return,99,2026-03-02,,,P-0", "amount", "more than the 50.00 left"),
        ("T-1,M-0001,return,10,2026-02-01,,,P-0", "occurred_at", "before its purchase"),
        ("P-0,M-0001,purchase,51,2026-03-01,,,", "external_id", "already imported with other"),
    ],
)
def test_every_bad_row_is_reported_and_nothing_is_written(alice, buy, line, column, reason):
    buy(alice, "50", when=at("2026-03-01"), external_id="P-0")
    before = state()
    report = run("G-1,M-0001,purchase,10,2026-03-01,,,\n" + line + "\n")
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert (error.line, error.column) == (3, column)
    assert reason in error.reason
    assert state() == before
    assert report.new == 0


def test_a_duplicate_external_id_in_the_file_names_the_first_line(alice):
    report = run("T-1,M-0001,purchase,10,2026-03-01,,,\nT-1,M-0001,purchase,10,2026-03-01,,,\n")
    assert [str(e) for e in report.errors] == ["line 3, external_id: duplicate of line 2"]
    assert not Transaction.objects.exists()


def test_a_row_repeating_the_id_of_a_bad_row_is_listed_in_the_same_run(alice):
    # Operations fix a file once: the repeat is listed beside the bad row it repeats,
    # not found only after the bad row is mended.
    report = run(
        "T-1,M-0001,purchase,abc,2026-03-01,,,\n"
        "T-1,M-0001,purchase,10,2026-03-01,,,\n"
        "T-2,M-0001,purchase,10,2026-03-01,,,\n"
        "T-2,M-0001,purchase,-5,2026-03-01,,,\n"
    )
    assert [(e.line, e.column) for e in report.errors] == [
        (2, "amount"),
        (3, "external_id"),
        (5, "amount"),
        (5, "external_id"),
    ]
    assert str(report.errors[1]) == "line 3, external_id: duplicate of line 2"
    assert str(report.errors[3]) == "line 5, external_id: duplicate of line 4"
    assert not Transaction.objects.exists()


def test_a_return_of_another_members_purchase_is_refused(alice, bob):
    report = run("T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0002,return,5,2026-03-02,,,T-1\n")
    assert [(e.line, e.column) for e in report.errors] == [(3, "original_external_id")]
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "import"])
def test_a_return_dated_before_its_purchase_later_in_the_file_is_refused_as_such(
    alice, bob, dry_run
):
    report = run(
        "T-2,M-0001,return,5,2026-03-01,,,T-1\n"
        "T-1,M-0001,purchase,10,2026-03-02,,,\n"
        "T-4,M-0001,return,5,2026-03-01,,,T-3\n"
        "T-3,M-0002,purchase,10,2026-03-02,,,\n",
        dry_run=dry_run,
    )
    assert [str(e) for e in report.errors] == [
        "line 2, occurred_at: it comes before its purchase T-1",
        "line 4, original_external_id: M-0001 has no purchase 'T-3'",
    ]
    assert not Transaction.objects.exists()


def test_a_return_dated_as_its_purchase_applies_after_it_whatever_the_lines(alice):
    # a file of dates alone: both at midnight, the return listed first
    report = run("T-2,M-0001,return,5,2026-03-02,,,T-1\nT-1,M-0001,purchase,10,2026-03-02,,,\n")

    assert (report.new, report.errors) == (2, [])
    assert earned(Transaction.objects.get(external_id="T-2")) == -5


def test_returns_of_one_purchase_in_the_file_never_exceed_it(alice):
    report = run(
        "T-1,M-0001,purchase,10,2026-03-01,,,\n"
        "T-2,M-0001,return,6,2026-03-02,,,T-1\n"
        "T-3,M-0001,return,6,2026-03-03,,,T-1\n"
    )
    assert [(e.line, e.column) for e in report.errors] == [(4, "amount")]


def test_a_missing_column_is_reported():
    rows, errors = read_transactions(io.BytesIO(b"external_id,member,kind\nT-1,M-1,purchase\n"))
    assert {e.column for e in errors} == {
        "amount",
        "occurred_at",
        "channel",
        "store",
        "original_external_id",
    }


def test_dry_run_computes_everything_and_writes_nothing(alice):
    before = state()
    report = run("T-1,M-0001,purchase,1000,2026-03-01,,,\n", dry_run=True)
    assert (report.new, report.points, report.tier_changes) == (1, 1000, 1)
    assert state() == before


def test_P2_a_row_that_would_earn_more_than_a_billion_points_is_refused_naming_the_rule(alice):
    """Operations import the largest purchase while five x100 campaigns stack on the
    highest rates (more points than the ledger can hold): the file imports nothing and
    the row's line says the rule, never a database error."""
    # given
    earning_at_the_bounds(campaigns=5, starts_at=at("2026-03-01", 0), ends_at=at("2026-03-08", 0))
    before = state()

    # when
    report = run(
        "T-1,M-0001,purchase,10,2026-02-28,,,\n"  # before the campaigns: 100,000 points
        "T-2,M-0001,purchase,100000.00,2026-03-03,,,\n"
    )

    # then
    running = ", ".join(f"Hundredfold {n} x100" for n in range(1, 6))
    assert [str(e) for e in report.errors] == [
        "line 3, amount: A purchase earns at most 1,000,000,000 points: this one would earn "
        "10,000,000,000,000,000,000 (100000.00 at 100 points per unit, Platinum x100, "
        f"{running}). Ask a marketer to check the earn rate, the tiers' multipliers and the "
        "campaigns"
    ]
    assert report.new == 0
    assert state() == before


def test_the_command_prints_every_bad_row_and_the_counts(alice, tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + "T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0404,purchase,1,x,,,\n")
    with pytest.raises(SystemExit) as exit_:
        call_command("import_transactions", str(path))
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert (
        "line 3, occurred_at: 'x' is not a date (2026-11-01) or a time (2026-11-01T10:00:00+01:00)"
    ) in captured.err
    assert captured.out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"
    path.write_text(HEADER + "T-1,M-0001,purchase,10,2026-03-01,,,\n")
    call_command("import_transactions", str(path), "--dry-run")
    call_command("import_transactions", str(path))
    assert capsys.readouterr().out.strip().splitlines()[-1] == "new=1 skipped=0 errors=0"
    assert Transaction.objects.count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_overlapping_imports_at_once_never_duplicate(make_member):
    for n in range(5):
        make_member(f"M-{n:04d}")
    first = "".join(f"A-{i},M-{i % 5:04d},purchase,10,2026-03-01,,,\n" for i in range(40))
    second = "".join(f"A-{i},M-{i % 5:04d},purchase,10,2026-03-01,,,\n" for i in range(20, 60))
    reports = run_together(2, lambda i: run((first, second)[i]))
    assert sorted((r.new, r.skipped) for r in reports) in ([(20, 20), (40, 0)], [(40, 0), (20, 20)])
    assert Transaction.objects.count() == 60
    call_command("check_ledger")


def test_a_large_file_takes_the_bulk_path_and_keeps_every_rule(make_member):
    from members.models import Notification, TierChange

    members = [make_member(f"M-{n:04d}") for n in range(3)]
    lines = []
    for i in range(150):  # enough rows for COPY on PostgreSQL
        code = f"M-{i % 3:04d}"
        lines.append(f"P-{i},{code},purchase,40.00,2026-03-01T{8 + i // 20:02d}:{i % 60:02d}:00,,,")
        if i % 10 == 0:
            lines.append(f"R-{i},{code},return,40.00,2026-03-02,,,P-{i}")
    report = run("\n".join(lines) + "\n")
    assert report.errors == [] and report.new == 165
    call_command("check_ledger")
    for member in members:
        assert summary(member)["qualified_tier"].code == "silver"
        change = TierChange.objects.get(member=member, reason="upgrade")
        message = Notification.objects.get(member=member, kind="tier_up")
        assert message.tier_change == change
    returned = Transaction.objects.get(external_id="R-0")
    assert returned.original.external_id == "P-0" and earned(returned) == -40


# The admin's import page and the exports


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def upload(client, text, name="t.csv"):
    return upload_bytes(client, (HEADER + text).encode(), name)


def upload_bytes(client, data: bytes, name="t.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    csv_file = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(
        reverse("admin:points_transaction_import"), {"import_file": csv_file, "format": "0"}
    )


def test_the_admin_import_previews_errors_then_confirms_with_a_summary(admin_client, alice):
    from django.urls import reverse

    page = upload(
        admin_client,
        "T-1,M-0001,purchase,10.001,2026-03-01,,,\n"
        "T-2,M-9,purchase,5,2026-03-01,,,\n"
        "T-3,M-0001,purchase,5,x,fax,,\n",  # two wrong cells: one row
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "Some rows failed to validate" in html
    assert "Nothing was imported: 3 rows cannot be imported" in html
    assert "more than two decimals" in html and "no member with customer code" in html
    assert "is not a date (2026-11-01)" in html
    assert not Transaction.objects.exists()

    page = upload(
        admin_client,
        "T-1,M-0001,purchase,1000,2026-03-01,,,\nT-2,M-0001,purchase,10,2026-03-02,,,\n",
    )
    html = page.content.decode()
    assert "<strong>2</strong> new" in html and "will earn <strong>1,015</strong> points" in html
    assert "tier-up bonuses and referrals will give <strong>100</strong>" in html
    assert "1 member changing tier" in html
    assert not Transaction.objects.exists()  # the preview writes nothing
    confirm = page.context["confirm_form"].initial
    done = admin_client.post(
        reverse("admin:points_transaction_process_import"), confirm, follow=True
    )
    assert (
        "Import finished: 2 new, 0 skipped; purchases earned 1,015 points, returns took back 0, "
        "tier-up bonuses and referrals gave 100; 1 member changed tier." in done.content.decode()
    )
    assert Transaction.objects.count() == 2
    call_command("check_ledger")
    from django.contrib.admin.models import LogEntry

    logged = LogEntry.objects.get(object_repr="Transactions import")
    assert logged.user.username == "admin" and "2 new" in logged.change_message


def test_a_file_that_became_wrong_since_its_preview_says_so_at_the_confirm(admin_client, alice):
    from django.contrib.admin.models import LogEntry
    from django.urls import reverse

    from points.services import record_purchase, record_return

    # given: a file returning 60.00 of a purchase of 100.00, previewed as fine
    record_purchase(
        member=alice, amount=Decimal("100"), occurred_at=at("2026-03-01"), external_id="P-1"
    )
    page = upload(admin_client, "R-1,M-0001,return,60,2026-03-05,,,P-1\n")
    assert "<strong>1</strong> new" in page.content.decode()
    # and meanwhile a till returns 60.00 of it: 40.00 is left
    record_return(
        member=alice,
        amount=Decimal("60"),
        occurred_at=at("2026-03-04"),
        external_id="R-TILL",
        original_external_id="P-1",
    )
    # when the operator confirms
    done = admin_client.post(
        reverse("admin:points_transaction_process_import"),
        page.context["confirm_form"].initial,
        follow=True,
    )
    # then: nothing imported, no "Import finished", and why
    html = done.content.decode()
    assert "Import finished" not in html
    assert "Nothing was imported: since the preview, 1 row became wrong: line 2, amount" in html
    assert not Transaction.objects.filter(external_id="R-1").exists()
    assert not LogEntry.objects.filter(object_repr="Transactions import").exists()


def test_the_admin_refuses_large_files_and_points_to_the_upload_page(admin_client, alice, settings):
    from points import admin as points_admin

    settings_limit = points_admin.ADMIN_IMPORT_MAX_MB
    points_admin.ADMIN_IMPORT_MAX_MB = 0.0001  # about 100 bytes
    try:
        page = upload(admin_client, "T-1,M-0001,purchase,10,2026-03-01,,,\n" * 5)
    finally:
        points_admin.ADMIN_IMPORT_MAX_MB = settings_limit
    assert "go through Imports › Upload a file" in page.content.decode()
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("dangerous", ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_exports_escape_cells_a_spreadsheet_would_run(alice, buy, dangerous):
    from members.resources import MemberResource
    from points.resources import TransactionResource

    Member.objects.filter(pk=alice.pk).update(first_name=dangerous, last_name="-12.5")
    buy(alice, "10", store=dangerous[:50])
    members = MemberResource().export()
    row = members.dict[0]
    assert row["first_name"] == "'" + dangerous
    assert row["last_name"] == "-12.5"  # a number stays a number
    transactions = TransactionResource().export()
    assert transactions.dict[0]["store"] == "'" + dangerous
    assert transactions.headers == list(HEADER.strip().split(","))


def test_the_export_pages_open(admin_client, alice):
    from django.urls import reverse

    assert admin_client.get(reverse("admin:members_member_export")).status_code == 200
    assert admin_client.get(reverse("admin:points_transaction_export")).status_code == 200


def test_importing_needs_the_add_transaction_permission(client, django_user_model, alice):
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_transaction"))
    client.force_login(clerk)
    assert client.get(reverse("admin:points_transaction_import")).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="add_transaction"))
    clerk = django_user_model.objects.get(pk=clerk.pk)
    client.force_login(clerk)
    assert client.get(reverse("admin:points_transaction_import")).status_code == 200


@pytest.mark.parametrize("kept", [3, 1000])  # purchases read back, or still in memory
def test_a_file_imports_the_same_whatever_its_chunks(alice, bob, monkeypatch, kept):
    # given a file whose returns come chunks after their purchases (three rows a chunk;
    # a chunk is written while the next is computed): P-1 is returned in the second
    # chunk and again in the third, P-4 in the second and again in the fourth, when it
    # is no longer kept (kept=3) and is read back
    rows = (
        "P-1,M-0001,purchase,100.00,2026-03-01,,,\n"
        "P-2,M-0002,purchase,950.00,2026-03-02,,,\n"
        "P-3,M-0001,purchase,40.00,2026-03-03,,,\n"
        "P-4,M-0002,purchase,100.00,2026-03-04,,,\n"  # bob reaches Silver: a bonus
        "R-1,M-0001,return,33.33,2026-03-05,,,P-1\n"
        "R-2,M-0002,return,50.00,2026-03-06,,,P-4\n"
        "R-3,M-0001,return,33.33,2026-03-07,,,P-1\n"
        "P-5,M-0001,purchase,0.50,2026-03-07,,,\n"  # no points
        "P-6,M-0001,purchase,0.50,2026-03-07,,,\n"
        "R-4,M-0002,return,50.00,2026-03-08,,,P-4\n"
        "R-5,M-0001,return,33.34,2026-03-09,,,P-1\n"  # the rest of P-1: all it earned
        "P-7,M-0001,purchase,0.50,2026-03-09,,,\n"
    )
    monkeypatch.setattr("points.services.importing.IMPORT_CHUNK", 3)
    monkeypatch.setattr("points.services.importing.IMPORT_PURCHASES_KEPT", kept)

    # when
    report = run(rows)

    # then each return knows what the chunks before it returned
    assert (report.new, report.errors) == (12, [])
    returns = {t.external_id: earned(t) for t in Transaction.objects.filter(kind="return")}
    assert returns == {"R-1": -33, "R-2": -50, "R-3": -33, "R-4": -50, "R-5": -34}
    assert (summary(alice)["lifetime"], summary(bob)["lifetime"]) == (40, 950)
    assert summary(bob)["qualified_tier"].code == "bronze"  # the returns take Silver back
    assert LedgerEntry.objects.filter(member=bob, kind="bonus").count() == 1
    call_command("check_ledger")


@pytest.mark.parametrize("kept", [2, 1000])  # P-1 read back for R-2, or still in memory
def test_a_return_beyond_what_earlier_chunks_left_is_refused(alice, monkeypatch, kept):
    monkeypatch.setattr("points.services.importing.IMPORT_CHUNK", 2)
    monkeypatch.setattr("points.services.importing.IMPORT_PURCHASES_KEPT", kept)

    report = run(
        "P-1,M-0001,purchase,100.00,2026-03-01,,,\n"
        "R-1,M-0001,return,60.00,2026-03-02,,,P-1\n"
        "P-2,M-0001,purchase,10.00,2026-03-03,,,\n"
        "P-3,M-0001,purchase,10.00,2026-03-04,,,\n"
        "R-2,M-0001,return,50.00,2026-03-05,,,P-1\n"
    )

    assert [str(e) for e in report.errors] == [
        "line 6, amount: 50.00 is more than the 40.00 left to return"
    ]
    assert Transaction.objects.count() == 0 and LedgerEntry.objects.count() == 0


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # real transactions
def test_rows_the_import_copies_cannot_point_at_nothing(alice):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from core.bulk import CopyBehind, reserve_ids
    from points.selectors import programme

    # given a ledger row for a member who does not exist, written as the import writes
    definition, now = programme().purchase_definition, timezone.now()
    columns = ["id", "member_id", "definition_id", "kind", "points", "counts_toward_tier"]
    columns += ["redeemable", "issued_at", "accrue_at", "reason", "created_at"]
    good = (alice.pk, definition.pk, "earn", 10, True, True, now, now, "", now)
    bad = (alice.pk + 1000, *good[1:])

    # when / then: the whole write fails, naming the column, and leaves nothing, also
    # when the write before it pointed at the same good rows
    with pytest.raises(IntegrityError, match="points_ledgerentry.*member_id"):
        with transaction.atomic(), CopyBehind() as writer:
            ids = reserve_ids(LedgerEntry, 3)
            writer.insert((LedgerEntry, columns, [(ids[0], *good)]))
            writer.insert((LedgerEntry, columns, [(ids[1], *good), (ids[2], *bad)]))
    assert LedgerEntry.objects.count() == 0


# Every bad row is named with its physical line, through both doors


@pytest.fixture
def importer(client, django_user_model):
    """An operator who may import transactions (points.add_transaction), not a superuser."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("operator", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_transaction", "add_transaction"])
    )
    client.force_login(user)
    assert django_user_model.objects.get(pk=user.pk).has_perm("points.add_transaction")
    return client


@pytest.fixture(params=["command", "admin"])
def door(request, tmp_path, capsys):
    """Sends a file's bytes through `manage.py import_transactions` or the admin's import
    page; returns what the operator reads (the command's output, the page's text)."""
    import html

    if request.param == "command":

        def send(data: bytes) -> str:
            path = tmp_path / "t.csv"
            path.write_bytes(data)
            try:
                call_command("import_transactions", str(path))
            except SystemExit as exit_:
                assert exit_.code == 1
            captured = capsys.readouterr()
            return captured.err + captured.out

        return send
    client = request.getfixturevalue("importer")

    def send(data: bytes) -> str:
        page = upload_bytes(client, data)
        assert page.status_code == 200
        return html.unescape(page.content.decode())

    return send


def lines(*rows) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


GOOD = "T-{n},M-0001,purchase,10,2026-03-01,,,"
REFUND = "T-9,M-0001,refund,10,2026-03-01,,,"  # a plain bad row, after the odd one

ODD_ROWS = {
    "a cell over 128 KB": (
        "T-3,M-0001,purchase,10,2026-03-01,,STORE-" + "x" * 200_000 + ",",
        "line 3, row: a cell longer than 131,072 characters",
    ),
    "a NUL byte": (
        "T-3,M-0001,purchase,10,2026-03-01,,ST\x00RE,",
        "line 3, store: a NUL character",
    ),
    "year 1 with an offset": (
        "T-3,M-0001,purchase,10,0001-01-01T00:00:00+01:00,,,",
        "line 3, occurred_at: 0001-01-01T00:00:00+01:00 is before the programme began",
    ),
    "year 9999 with an offset": (
        "T-3,M-0001,purchase,10,9999-12-31T23:00:00-05:00,,,",
        "line 3, occurred_at: 9999-12-31T23:00:00-05:00 is more than a day in the future",
    ),
    "cells beyond the header": (
        "T-3,M-0001,purchase,10,2026-03-01,,,,EXTRA",
        "line 3, row: 9 cells, the header has 8 columns",
    ),
}


@pytest.mark.parametrize("row, message", ODD_ROWS.values(), ids=ODD_ROWS.keys())
def test_every_bad_row_is_named_with_its_line_whatever_is_in_it(alice, door, row, message):
    # given a file whose third line crashed the import, between good rows, and a plain
    # bad row after it
    before = state()

    # when
    shown = door(lines(GOOD.format(n=2), row, GOOD.format(n=4), REFUND))

    # then both bad rows are named, with their lines, and nothing is written
    assert message in shown
    assert "line 5, kind: unknown kind 'refund'" in shown
    assert state() == before


def test_an_unclosed_quote_is_named_at_the_line_it_opens(alice, door):
    data = lines(GOOD.format(n=2), REFUND, 'T-4,M-0001,purchase,10,2026-03-01,,"S' + "x" * 200_000)
    shown = door(data)
    assert "line 3, kind: unknown kind 'refund'" in shown
    assert "line 4, row: a cell longer than 131,072 characters (is a quote left open?)" in shown


def test_the_command_always_ends_with_the_counts(alice, tmp_path, capsys):
    for row, _ in ODD_ROWS.values():
        path = tmp_path / "t.csv"
        path.write_bytes(lines(GOOD.format(n=2), row))
        with pytest.raises(SystemExit):
            call_command("import_transactions", str(path))
        assert capsys.readouterr().out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"
    assert not Transaction.objects.exists()


def test_the_command_ends_with_the_counts_even_when_the_import_itself_fails(
    alice, tmp_path, capsys, monkeypatch
):
    # given an import that fails on its own, not on a row (the database gone)
    def gone(*args, **kwargs):
        raise ConnectionError("the database went away")

    monkeypatch.setattr("points.management.commands.import_transactions.import_transactions", gone)
    path = tmp_path / "t.csv"
    path.write_bytes(lines(GOOD.format(n=2)))

    # when / then: the traceback follows the last line, which is still the counts
    with pytest.raises(ConnectionError):
        call_command("import_transactions", str(path))
    captured = capsys.readouterr()
    assert "nothing was written" in captured.err
    assert captured.out.strip().splitlines()[-1] == "new=0 skipped=0 errors=1"


PHYSICAL_LINES = {
    "blank lines": (
        HEADER + "\n" + GOOD.format(n=3) + "\n\n" + REFUND + "\n",
        "line 5, kind: unknown kind 'refund'",
    ),
    "blank lines, CRLF": (
        (HEADER + "\n" + GOOD.format(n=3) + "\n\n" + REFUND + "\n").replace("\n", "\r\n"),
        "line 5, kind: unknown kind 'refund'",
    ),
    "a quoted cell over two lines": (
        HEADER + 'T-2,M-0001,purchase,10,2026-03-01,,"STORE\n12",\n' + REFUND + "\n",
        "line 4, kind: unknown kind 'refund'",
    ),
    "a bad row over two lines, by its first": (
        HEADER + GOOD.format(n=2) + '\nT-9,M-0001,refund,10,2026-03-01,,"STORE\n12",\n',
        "line 3, kind: unknown kind 'refund'",
    ),
}


@pytest.mark.parametrize("text, message", PHYSICAL_LINES.values(), ids=PHYSICAL_LINES.keys())
def test_line_numbers_are_the_files_physical_lines(alice, door, text, message):
    assert message in door(text.encode())


def test_a_byte_that_is_not_utf8_is_named_at_its_physical_line(alice, door):
    # given 3,000 good rows (lines 2 to 3001), a Latin-1 "É" on line 3002 and a bad row
    data = lines(*(GOOD.format(n=n) for n in range(2, 3002)))
    data += b"T-3002,M-0001,purchase,10,2026-03-01,,CAF\xc9,\n" + REFUND.encode() + b"\n"
    before = state()

    shown = door(data)

    assert "line 3002, store: not UTF-8 text (byte 0xC9): save the file as UTF-8" in shown
    assert "line 3003, kind: unknown kind 'refund'" in shown
    assert state() == before


def test_empty_cells_beyond_the_header_are_ignored(alice):
    report = run("T-1,M-0001,purchase,10,2026-03-01,,,,,\n")
    assert (report.new, report.errors) == (1, [])


@pytest.mark.parametrize(
    "amount, reason",
    [
        ("1_000", "'1_000' is not an amount"),
        ("١٢", "'١٢' is not an amount"),
        ("1e2", "'1e2' is not an amount"),
        ("+12", "'+12' is not an amount"),
        ("12.", "'12.' is not an amount"),
        (".5", "'.5' is not an amount"),
        ('"1,000"', "'1,000' is not an amount"),
        ("1 000", "'1 000' is not an amount"),
        ("NaN", "'NaN' is not an amount"),
        ("100000.01", "100000.01 is more than the 100,000.00 allowed in one transaction"),
        ("9999999999.99", "9999999999.99 is more than the 100,000.00 allowed in one transaction"),
    ],
)
def test_amounts_are_plain_decimals_up_to_the_maximum(alice, amount, reason):
    before = state()
    report = run(f"T-1,M-0001,purchase,{amount},2026-03-01,,,\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "amount")]
    assert reason in str(report.errors[0])
    assert state() == before


def test_the_maximum_amount_is_a_setting_and_is_itself_allowed(alice, settings):
    settings.MAX_TRANSACTION_AMOUNT = Decimal("500.00")
    report = run(
        "T-1,M-0001,purchase,500.00,2026-03-01,,,\nT-2,M-0001,purchase,500.01,2026-03-01,,,\n"
    )
    assert [str(e) for e in report.errors] == [
        "line 3, amount: 500.01 is more than the 500.00 allowed in one transaction"
    ]
    settings.MAX_TRANSACTION_AMOUNT = Decimal("100000.00")
    assert run("T-1,M-0001,purchase,100000.00,2026-03-01,,,\n").new == 1


def test_times_before_the_programme_or_over_a_day_ahead_are_refused(alice, settings):
    from datetime import date, timedelta

    from django.utils import timezone

    settings.PROGRAMME_START = date(2010, 1, 1)
    soon = (timezone.localtime() + timedelta(hours=23)).replace(microsecond=0).isoformat()
    late = (timezone.localtime() + timedelta(days=1, minutes=1)).replace(microsecond=0)
    report = run(
        f"T-1,M-0001,purchase,10,{soon},,,\n"  # less than a day ahead: clocks differ
        "T-2,M-0001,purchase,10,2010-01-01,,,\n"  # the programme's first moment
        f"T-3,M-0001,purchase,10,{late.isoformat()},,,\n"
        "T-4,M-0001,purchase,10,2009-12-31T23:59:59+01:00,,,\n"
        "T-5,M-0001,purchase,10,0001-01-01,,,\n"
        "T-6,M-0001,purchase,10,9999-12-30,,,\n"
    )
    assert [str(e) for e in report.errors] == [
        f"line 4, occurred_at: {late.isoformat()} is more than a day in the future",
        "line 5, occurred_at: 2009-12-31T23:59:59+01:00 is before the programme began"
        " (1 January 2010)",
        "line 6, occurred_at: 0001-01-01 is before the programme began (1 January 2010)",
        "line 7, occurred_at: 9999-12-30 is more than a day in the future",
    ]
    assert not Transaction.objects.exists()
    assert Member.objects.get(pk=alice.pk).last_purchase_at is None


def test_a_dry_run_finds_what_the_import_does_when_a_return_names_a_purchase_long_before(
    alice, make_member, monkeypatch
):
    # given chunks of two rows and two purchases kept: the return's purchase has left
    # the purchases kept by the time the return is computed
    monkeypatch.setattr("points.services.importing.IMPORT_CHUNK", 2)
    monkeypatch.setattr("points.services.importing.IMPORT_PURCHASES_KEPT", 2)
    bob = make_member("M-0002")
    text = (
        "T-1,M-0001,purchase,100.00,2026-03-01,,,\n"
        + "".join(f"T-{n},M-0002,purchase,10.00,2026-03-0{n},,,\n" for n in range(2, 8))
        + "R-1,M-0001,return,40.00,2026-03-09,,,T-1\n"
        + "R-2,M-0001,return,70.00,2026-03-09,,,T-1\n"  # more than is left: refused
    )
    before = state()
    # when checked, then imported
    checked = run(text, dry_run=True)
    assert state() == before
    imported = run(text)
    # then the dry run said what the import found: the same refusal, nothing written
    assert [(e.line, e.column) for e in checked.errors] == [
        (e.line, e.column) for e in imported.errors
    ]
    assert [e.line for e in imported.errors] == [10]
    assert state() == before
    # and without the bad row, the same points as the import
    fixed = text.replace("R-2,M-0001,return,70.00,2026-03-09,,,T-1\n", "")
    assert run(fixed, dry_run=True).points == run(fixed).points == 100 - 40 + 60
    assert summary(alice)["lifetime"] == 60 and summary(bob)["lifetime"] == 60


def test_P1_without_an_active_purchase_definition_purchase_rows_are_refused_and_nothing_written(
    alice,
):
    # given: the marketers switched the purchase definition off
    PointDefinition.objects.filter(kind="purchase").update(is_active=False)
    before = state()

    # when
    report = run(
        "T-1,M-0001,purchase,10.00,2026-03-01,,,\nT-2,M-0001,purchase,20.00,2026-03-02,,,\n"
    )

    # then
    assert [str(error) for error in report.errors] == [
        f"line {line}, kind: No active purchase definition: a marketer must activate one"
        for line in (2, 3)
    ]
    assert state() == before


def test_P5_an_accrual_delay_is_at_most_ten_years(tiers):
    definition = PointDefinition.objects.get(kind="purchase")
    definition.accrue_delay_days = 3651
    with pytest.raises(ValidationError) as refused:
        definition.full_clean()
    assert "accrue_delay_days" in refused.value.message_dict


def test_a_row_wrong_in_another_cell_is_also_checked_for_an_unknown_member(alice):
    # given rows with a misspelt kind or a bad amount, one naming no member
    before = state()
    report = run(
        "T-1,M-9999,purchse,10,2026-03-01,,,\n"
        "T-2,M-0001,purchse,10,2026-03-01,,,\n"
        "T-3,M-9999,purchase,ten,2026-03-01,,,\n"
    )

    # then every wrong cell is listed in one run, not the member once the kind is fixed
    assert [str(e) for e in report.errors] == [
        "line 2, kind: unknown kind 'purchse': purchase or return",
        "line 2, member: no member with customer code 'M-9999'",
        "line 3, kind: unknown kind 'purchse': purchase or return",
        "line 4, amount: 'ten' is not an amount (write digits and at most two decimals after "
        "a point, like 1250.50)",
        "line 4, member: no member with customer code 'M-9999'",
    ]
    assert report.summary() == "new=0 skipped=0 errors=3"
    assert state() == before


def test_a_file_s_purchase_for_an_erased_account_is_named_and_nothing_is_written(alice, staff):
    from members.services import erase_member

    erased = erase_member(member=alice, by=staff)
    before = state()

    report = run(f"T-1,{erased.external_id},purchase,10.00,2026-03-01,pos,,\n")

    assert [str(error) for error in report.errors] == [
        f"line 2, member: {erased.external_id} was erased at the customer's request: it "
        "receives no more points, which could never be used"
    ]
    assert state() == before
