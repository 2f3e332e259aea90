"""The checks of a members file's rows: every bad row named with its line and
column, nothing written; an erased customer is not enrolled again."""

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.models import Member
from points.csv_rows import COLUMNS as TRANSACTION_COLUMNS
from points.resources import read_transactions
from tests.points.member_files import HEADER, run, state

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "line, column, reason",
    [
        ("M-1,not-an-email,,,,,,,", "email", "valid email"),
        ("M-1,,,,,,,,", "email", "required"),
        (",ann@example.com,,,,,,,", "external_id", "required"),
        ("M-1,ann@example.com,,,,,,-5,", "opening_points", "negative"),
        ("M-1,ann@example.com,,,,,,,-1", "opening_lifetime", "negative"),
        ("M-1,ann@example.com,,,,,,1.5,", "opening_points", "not a whole number"),
        ("M-1,ann@example.com,,,,,,lots,", "opening_points", "not a whole number"),
        ("M-1,ann@example.com,,,,,,,2000000000", "opening_lifetime", "more than"),
        ("M-1,ann@example.com,,,,2020-13-01,,,", "joined_at", "is not a date (2026-11-01)"),
        ("M-1,ann@example.com,,,,9999-12-31T23:59:59-01:00,,,", "joined_at", "outside the"),
        ("M-1,ann@example.com,,,,0001-01-01T00:00:00+01:00,,,", "joined_at", "outside the"),
        ("M-1,ann@example.com,,,,9999-12-31,,,", "joined_at", "more than a day in the future"),
        ("M-1,ann@example.com,,,,2999-01-01T10:00:00+00:00,,,", "joined_at", "in the future"),
        ("M-1,ann@example.com,,,,,," + "9" * 5000 + ",", "opening_points", "5,000 digits"),
        ("M-1,ann@example.com,,,,,1990-02-30,,", "birth_date", "not a date"),
        ("M-1,ann@example.com,,,,,01/05/1990,,", "birth_date", "not a date"),
        ("M-1,ann@example.com,,,,,2999-01-01,,", "birth_date", "cannot be in the future"),
        ("M-1,ann@example.com,,,,,0001-01-01,,", "birth_date", "year typed wrong"),
        ("M-1,ann@example.com,,,,0001-01-01,,,", "joined_at", "year typed wrong"),
        # Year 1 at 00:10 UTC is year 0 in Madrid (-00:14:44 then): no day of the programme
        ("M-1,ann@example.com,,,,0001-01-01T00:10:00Z,,,", "joined_at", "outside the calendar"),
        ("M-1,ann@example.com," + "A" * 101 + ",,,,,,", "first_name", "at most 100"),
        ("M-1,ann@example.com,,,,,,,,extra", "row", "cells, the header has"),
    ],
)
def test_a_bad_email_or_a_negative_opening_balance_is_named_and_nothing_is_written(
    tiers, line, column, reason
):
    before = state()
    report = run("M-0,ok@example.com,,,,,,100,100\n" + line + "\n")
    assert [(e.line, e.column) for e in report.errors] == [(3, column)]
    assert reason in report.errors[0].reason
    assert (report.new, report.updated) == (0, 0)
    assert state() == before  # the good row on line 2 was not written either


def test_every_bad_row_is_listed(tiers):
    report = run(
        "M-1,bad,,,,,,,\n"
        "M-2,ok@example.com,,,,,,,\n"
        "M-3,ok@example.com,,,,,,-1,x\n"
        "M-2,again@example.com,,,,,,,\n"
    )
    assert [(e.line, e.column) for e in report.errors] == [
        (2, "email"),
        (4, "opening_lifetime"),
        (4, "opening_points"),
        (5, "external_id"),
    ]
    assert str(report.errors[-1]) == "line 5, external_id: duplicate of line 3"
    assert Member.objects.count() == 0


def test_a_row_repeating_the_code_of_a_bad_row_is_listed_in_the_same_run(tiers):
    report = run("M-1,bad,,,,,,,\nM-1,ok@example.com,,,,,,,\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "email"), (3, "external_id")]
    assert str(report.errors[-1]) == "line 3, external_id: duplicate of line 2"
    assert Member.objects.count() == 0


def test_enroll_member_checks_a_birth_date_as_the_import_does(tiers):
    from django.core.exceptions import ValidationError

    from members.services import enroll_member

    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(ValidationError, match="cannot be in the future"):
        enroll_member(external_id="M-1", email="a@example.com", birth_date=tomorrow)


@pytest.mark.parametrize(
    "moment, why",
    [
        ("2026-03-29T02:30", "does not exist in Europe/Madrid (the clocks went forward"),
        ("2026-10-25T02:30", "happened twice in Europe/Madrid (the clocks went back"),
    ],
)
def test_a_joining_time_the_clock_change_skips_or_repeats_asks_for_its_offset(
    tiers, tmp_path, capsys, moment, why
):
    path = tmp_path / "members.csv"
    path.write_text(HEADER + f"M-1,ann@example.com,,,,{moment},,,\n")
    with pytest.raises(SystemExit):
        call_command("import_members", str(path))
    [error] = capsys.readouterr().err.splitlines()
    offsets = "+01:00 or +02:00" if "forward" in why else "+02:00 or +01:00"
    assert error == (
        f"line 2, joined_at: {moment!r} {why} that night): give it with its offset ({offsets})"
    )
    # The same words as the transactions import's.
    purchase = f"{','.join(TRANSACTION_COLUMNS)}\nT-1,M-1,purchase,10,{moment},,,\n"
    rows, errors = read_transactions(io.BytesIO(purchase.encode()))
    list(rows)
    assert [e.reason for e in errors] == [error.removeprefix("line 2, joined_at: ")]
    assert not Member.objects.exists()


def test_a_file_does_not_enrol_again_a_customer_erased_at_their_request(tiers, make_member, staff):
    """Found by an audit: the brand's old file imported again after an erasure enrolled
    the customer anew, with the personal data they asked to be forgotten and a second
    welcome."""
    # given: M-12 erased at her request
    from members.services import enroll_member, erase_member

    erase_member(member=make_member("M-12"), by=staff)
    before = state()

    # when: a file names M-12 again
    report = run("M-12,paula@example.com,Paula,Erased,,2020-01-01,,,\n")

    # then: refused, saying why; nothing written
    assert [str(error) for error in report.errors] == [
        "line 2, external_id: M-12 was a customer erased at their request: a file does not "
        "enrol them again (an agent enrols them by hand if they ask to join)"
    ]
    assert state() == before
    # and the customer who asks to join again is enrolled by hand (or by a till)
    assert enroll_member(external_id="M-12", email="paula@example.com").pk


def test_an_erased_code_is_kept_keyed_and_known_again_after_the_key_is_rotated(
    tiers, make_member, staff, settings
):
    """Found by an audit: what an erased account kept of its code was a plain SHA-256,
    and trying every code of the brand's format (676,000 for M-XX-NNN) gave it back in
    a second. It is keyed with SECRET_KEY, which is not in the database."""
    from members.services import erase_member

    # given: M-ZQ-777 erased at his request
    erased = erase_member(member=make_member("M-ZQ-777"), by=staff)

    # then: what the database keeps is not the code's plain hash, which anyone can try
    for text in ["M-ZQ-777", "erased customer code:M-ZQ-777"]:
        assert erased.erased_code != hashlib.sha256(text.encode()).hexdigest()

    # and when the brand rotates its key (the old one kept as a fallback), a file that
    # names him again is still refused
    settings.SECRET_KEY_FALLBACKS, settings.SECRET_KEY = [settings.SECRET_KEY], "k" * 50
    before = state()
    report = run("M-ZQ-777,zq@example.org,Zeb,Q,,2020-01-01,,,\n")
    [error] = report.errors
    assert "M-ZQ-777 was a customer erased at their request" in str(error)
    assert state() == before


LIFETIME_FIRST = HEADER.replace(
    "opening_points,opening_lifetime", "opening_lifetime,opening_points"
)


@pytest.mark.parametrize("header", [HEADER, LIFETIME_FIRST])
def test_a_number_written_with_a_thousands_comma_before_an_empty_last_cell_is_refused(header):
    """Found by a review (left by earlier notes): "1,250" unquoted, the row's last cell
    empty, was read as 1 point in one column and 250 in the next, without a word."""
    before = state()
    report = run("M-1,ann@example.com,,,,,,1,250,\n", header=header)
    assert [str(e) for e in report.errors] == [
        "line 2, row: 10 cells, the header has 9 columns: is there a comma inside a value? "
        "Write amounts without a thousands separator (1000.00, not 1,000.00), and text with a "
        'comma in quotes ("Madrid, Centro")'
    ]
    assert state() == before


def test_a_row_with_an_empty_cell_past_the_header_and_no_cut_number_is_read():
    report = run("M-1,ann@example.com,,,,,,5,20,\n")
    assert report.errors == [] and report.new == 1
