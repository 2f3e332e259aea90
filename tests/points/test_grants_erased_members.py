"""Point grants and erased members: a file sent again reports their rows as already
imported, and an erased account is given no points by a file or by hand."""

import pytest
from django.core.exceptions import ValidationError

from members.services import erase_member
from points.services import adjust_points
from tests.points.grant_files import NOW, available, grant, state

pytestmark = pytest.mark.django_db


def test_a_grants_file_resent_after_a_member_was_erased_reports_their_rows_as_already_imported(
    alice, bob, staff
):
    # given a grants file imported once, then one of its members erased
    rows = "G-1,M-0001,250,Damaged parcel,\nG-2,M-0002,40,Late delivery,\n"
    grant(rows, by=staff)
    erase_member(member=bob, by=staff)
    before = state()

    # when the same file is sent again
    report = grant(rows, by=staff)

    # then both rows are already imported: skipped, nothing written
    assert (report.new, report.skipped, report.errors) == (0, 2, [])
    assert state() == before


def test_a_resent_grant_of_an_erased_member_with_other_points_is_an_error(alice, bob, staff):
    grant("G-2,M-0002,40,Late delivery,\n", by=staff)
    erase_member(member=bob, by=staff)
    before = state()

    report = grant("G-2,M-0002,45,Late delivery,\n", by=staff)

    assert [str(error) for error in report.errors] == [
        "line 2, external_id: G-2 was already imported with other content"
    ]
    assert state() == before


def test_a_new_grant_for_an_erased_code_names_no_member(alice, bob, staff):
    code = bob.external_id
    erase_member(member=bob, by=staff)

    report = grant(f"G-9,{code},40,Late delivery,\n", by=staff)

    assert [str(error) for error in report.errors] == [
        f"line 2, member: no member with customer code {code!r}"
    ]


def test_points_are_not_given_to_an_erased_account_by_a_file_or_by_hand(alice, bob, staff):
    """Found by an audit: a grants row naming an erased account ("ERASED-...") granted
    points nobody could ever use, which stayed in the outstanding points for good."""
    # given: bob erased, with 40 points
    grant("G-1,M-0002,40,Late delivery,\n", by=staff)
    erased = erase_member(member=bob, by=staff)
    before = state()

    # when: a file gives it 100 points, and an agent gives it 5
    report = grant(f"G-2,{erased.external_id},100,Goodwill,\n", by=staff)
    with pytest.raises(ValidationError) as by_hand:
        adjust_points(member=erased, points=5, reason="Goodwill", by=staff, now=NOW)

    # then: both refused, saying why; nothing written
    said = (
        f"{erased.external_id} was erased at the customer's request: it receives no more "
        "points, which could never be used"
    )
    assert [str(error) for error in report.errors] == [f"line 2, points: {said}"]
    assert by_hand.value.message_dict == {"points": [f"{said}."]}
    assert state() == before
    # and its balance can still be written off
    adjust_points(member=erased, points=-40, reason="Written off", by=staff, now=NOW)
    assert available(erased) == 0
