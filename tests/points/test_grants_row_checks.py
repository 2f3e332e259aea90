"""The checks of a grants file's rows: every bad row named with its line, quotes
and columns read right, and nothing granted."""

import io

import pytest

from points.grant_rows import read_grants
from points.models import LedgerEntry
from points.services import adjust_points
from tests.conftest import at
from tests.points.grant_files import available, grant, state

pytestmark = pytest.mark.django_db


def test_a_file_with_a_bad_row_grants_nothing_and_names_every_bad_row(alice, bob, staff, settings):
    # given
    settings.MAX_ADJUSTMENT_POINTS = 10_000
    adjust_points(member=bob, points=100, reason="Welcome", by=staff, now=at("2026-03-01"))
    before = state()

    # when
    report = grant(
        "G-1,M-0001,250,Goodwill,\n"
        "G-2,M-9999,250,Goodwill,\n"
        "G-3,M-0001,0,Goodwill,\n"
        "G-4,M-0001,ten,Goodwill,\n"
        "G-5,M-0001,10001,Goodwill,\n"
        "G-6,M-0001,5,   ,\n"
        "G-7,M-0001,5,Goodwill,no-such-thing\n"
        "G-8,M-0002,-101,Typo,\n"
        ",M-0001,5,Goodwill,\n"
        "G-9,M-0001,1.5,,\n"
        f"G-10,M-0001,{'9' * 5000},Goodwill,\n",
        by=staff,
    )

    # then
    assert [str(e) for e in report.errors] == [
        "line 3, member: no member with customer code 'M-9999'",
        "line 4, points: Give a whole number of points other than zero",
        "line 5, points: 'ten' is not a whole number of points",
        "line 6, points: At most 10,000 points can be added or removed in one adjustment, "
        "not 10,001",
        "line 7, reason: Say why the points are adjusted",
        "line 8, definition: no definition 'no-such-thing'",
        "line 9, points: Cannot remove 101 points: M-0002 has only 100 available",
        "line 10, external_id: an id of 1 to 100 characters is required",
        "line 11, points: '1.5' is not a whole number of points",
        "line 11, reason: Say why the points are adjusted",
        "line 12, points: 999999999999… (5,000 digits) is more than any limit allows",
    ]
    assert (report.new, report.points) == (0, 0)
    assert state() == before


def test_a_quote_left_open_is_named_and_grants_nothing(alice, bob, staff):
    """A reason's quote left open took the rows below it into that reason: the file was
    "checked" with one row of three, and confirming granted 10 points of 120 without a
    word (found by an audit)."""
    before = state()

    report = grant(
        'G-1,M-0001,10,"Apology for parcel,\nG-2,M-0002,50,Second,\nG-3,M-0001,60,Third,\n',
        by=staff,
    )

    assert [str(e) for e in report.errors] == [
        "line 2, row: a quote opened on this line is never closed: every line below it "
        "would be read as one cell. Close the quote, or write the text without it"
    ]
    assert (report.new, report.points) == (0, 0)
    assert state() == before


def test_text_after_a_closing_quote_is_named_not_run_into_it(alice, staff):
    report = grant('G-1,M-0001,10,"Apology" for parcel,\n', by=staff)

    assert [str(e) for e in report.errors] == [
        "line 2, row: text after a closing quote: inside quoted text write a quote as two "
        '("12"" screen"), and put nothing between the closing quote and the comma'
    ]


def test_a_duplicate_external_id_in_the_file_names_the_first_line(alice, staff):
    report = grant("G-1,M-0001,250,Goodwill,\nG-1,M-0001,250,Goodwill,\n", by=staff)
    assert [str(e) for e in report.errors] == ["line 3, external_id: duplicate of line 2"]
    assert not LedgerEntry.objects.exists()


def test_a_row_repeating_the_id_of_a_bad_row_is_listed_in_the_same_run(alice, staff):
    report = grant("G-1,M-0001,lots,Goodwill,\nG-1,M-0001,250,Goodwill,\n", by=staff)
    assert [(e.line, e.column) for e in report.errors] == [(2, "points"), (3, "external_id")]
    assert str(report.errors[1]) == "line 3, external_id: duplicate of line 2"
    assert not LedgerEntry.objects.exists()


def test_a_bom_and_a_file_without_the_definition_column_are_accepted(alice, staff):
    report = grant(
        "G-1,M-0001,+250,Goodwill\n",
        by=staff,
        header="external_id,member,points,reason\n",
        bom=True,
    )
    assert report.errors == [] and available(alice) == 250


def test_a_missing_column_is_reported(staff):
    rows, errors = read_grants(io.BytesIO(b"external_id,member,definition\nG-1,M-1,x\n"))
    assert [str(e) for e in errors] == [
        "line 1, points: missing column",
        "line 1, reason: missing column",
    ]


@pytest.mark.parametrize("key", ["enrolment:", "referral:", "opening-points:", "opening-lifetime:"])
def test_a_grant_id_may_not_take_a_key_the_programme_writes_for_itself(alice, staff, key):
    # (welcome and referral points, opening balances: a grant holding one would block
    # the member's own, and the till's purchase paying a referral would fail)
    before = state()
    report = grant(f"{key}{alice.pk + 1},M-0001,10,Spring apology,\n", by=staff)
    assert [str(e) for e in report.errors] == [
        "line 2, external_id: ids starting enrolment:, referral:, opening-points:, "
        "opening-lifetime: are the programme's own"
    ]
    assert state() == before


def test_a_grant_wrong_in_another_cell_is_also_checked_for_an_unknown_member(alice, staff):
    before = state()
    report = grant("G-1,M-9999,ten,Goodwill,\nG-2,M-0001,ten,Goodwill,\n", by=staff)

    assert [str(e) for e in report.errors] == [
        "line 2, member: no member with customer code 'M-9999'",
        "line 2, points: 'ten' is not a whole number of points",
        "line 3, points: 'ten' is not a whole number of points",
    ]
    assert state() == before


def test_a_grant_id_with_an_invisible_character_is_refused_as_a_transaction_s_is(alice, staff):
    """Found by a review: the file sent again with its ids pasted from a message holding
    a zero-width space granted every point a second time, under ids that look the same."""
    grant("SPRING-1,M-0001,150,Spring apology,\n", by=staff)

    again = grant("SPRING-1\u200b,M-0001,150,Spring apology,\n", by=staff)

    assert [str(e) for e in again.errors] == [
        "line 2, external_id: An id cannot hold an invisible character (U+200B ZERO WIDTH "
        "SPACE, character 9): it would look like another id."
    ]
    assert available(alice) == 150


def test_a_value_under_a_column_without_a_name_is_named_not_left_out(alice, staff):
    """Found by a review: the definition under an empty header cell was dropped, and the
    grant became a manual adjustment that counts toward no tier."""
    before = state()
    report = grant(
        "G-1,M-0001,150,Spring apology,goodwill-tier-points\n",
        by=staff,
        header="external_id,member,points,reason,\n",
    )

    assert [str(e) for e in report.errors] == [
        "line 2, column 5: 'goodwill-tier-points' is in a column without a name in the "
        "header: name the column, or leave its cells empty"
    ]
    assert state() == before


def test_empty_cells_under_columns_without_a_name_are_a_spreadsheet_s_and_pass(alice, staff):
    report = grant(
        "G-1,M-0001,150,Spring apology,,\n",
        by=staff,
        header=",".join(["external_id", "member", "points", "reason", "definition", "", ""]) + "\n",
    )
    assert report.errors == [] and available(alice) == 150


def test_a_number_cut_by_a_comma_is_named_under_a_header_with_a_trailing_comma(alice, staff):
    """Found by a review: the value pushed under the unnamed column was named instead,
    and the user told to empty the definition."""
    report = grant(
        "G-1,M-0001,1,500,Spring apology,goodwill-tier-points\n",
        by=staff,
        header="external_id,member,points,reason,definition,\n",
    )
    assert [e.column for e in report.errors] == ["points"]
