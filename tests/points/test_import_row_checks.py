"""The checks of a transactions file's rows and cells (codes, kinds, amounts, dates,
ids): every bad row named with its line and column in one run, nothing written."""

import io
from datetime import datetime
from decimal import Decimal

import pytest

from members.models import Member
from points.models import Transaction
from points.resources import read_transactions
from tests.conftest import (
    at,
)
from tests.points.transaction_files import run, state

pytestmark = pytest.mark.django_db


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


def test_a_missing_column_is_reported():
    rows, errors = read_transactions(io.BytesIO(b"external_id,member,kind\nT-1,M-1,purchase\n"))
    assert {e.column for e in errors} == {
        "amount",
        "occurred_at",
        "channel",
        "store",
        "original_external_id",
    }


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


def test_a_file_wrong_on_most_rows_is_read_only_to_its_first_errors(alice, monkeypatch):
    """Found by a review: a file of a million rows with the same mistake on each kept
    every error, 2 GB in the worker, which was killed; the file is now read until
    ERRORS_READ errors (50,000), which say what to put right."""
    monkeypatch.setattr("points.csv_files.ERRORS_READ", 3)
    before = state()
    rows = [f"T-{n},M-0001,purchase,10,01/11/2026,,,\n" for n in range(1, 11)]

    report = run("T-0,M-0001,purchase,10,2026-03-29,,,\n" + "".join(rows))

    assert [(e.line, e.column) for e in report.errors] == [
        (3, "occurred_at"),
        (4, "occurred_at"),
        (5, "occurred_at"),
        (6, "row"),
    ]
    assert report.errors[-1].reason.startswith("3 errors by this line: the file was read no")
    assert report.bad_rows == 3  # the line it stopped at was not read: not counted wrong
    assert state() == before


def test_a_return_of_a_row_refused_for_an_unnamed_column_is_not_said_to_have_no_purchase(
    alice,
):
    """Found by a review: the purchase refused for a value under a column without a name
    kept no id, and its return read "M-0001 has no purchase 'T-1'"."""
    from points.services import import_transactions
    from tests.points.transaction_files import HEADER

    text = (
        HEADER.rstrip("\n")
        + ",\n"
        + ("T-1,M-0001,purchase,10,2026-03-01,,,,note\nT-2,M-0001,return,10,2026-03-02,,,T-1,\n")
    )
    rows, errors = read_transactions(io.BytesIO(text.encode()))

    report = import_transactions(rows, errors=errors)

    assert [(e.line, e.column) for e in report.errors] == [(2, "column 9")]


def test_a_file_of_another_programme_s_codes_is_checked_only_to_its_first_errors(
    alice, monkeypatch
):
    """Found by a review: rows well formed but naming no member were all kept."""
    monkeypatch.setattr("points.csv_files.ERRORS_READ", 3)
    monkeypatch.setattr("points.services.importing.IMPORT_CHUNK", 2)
    before = state()

    report = run("".join(f"T-{n},X-{n},purchase,10,2026-03-01,,,\n" for n in range(1, 11)))

    assert [(e.line, e.column) for e in report.errors] == [
        (2, "member"),
        (3, "member"),
        (4, "member"),
        (5, "member"),
        (6, "row"),
    ]
    assert state() == before
