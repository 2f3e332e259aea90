"""A merged account's customer code in the imports (transactions, point grants,
members) names the member it was merged into (DESIGN.md, "Member 360")."""

import io

import pytest
from django.core.management import call_command

from members.models import Member
from members.services import merge_members
from points.grant_rows import read_grants
from points.member_rows import read_members
from points.models import LedgerEntry, Transaction
from points.resources import read_transactions
from points.services import import_grants, import_members, import_transactions
from tests.conftest import summary

pytestmark = pytest.mark.django_db

TRANSACTIONS = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
GRANTS = "external_id,member,points,reason,definition\n"
MEMBERS = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime\n"
)


def transactions(text):
    rows, errors = read_transactions(io.BytesIO((TRANSACTIONS + text).encode()))
    return import_transactions(rows, errors=errors)


def grants(text, by):
    rows, errors = read_grants(io.BytesIO((GRANTS + text).encode()))
    return import_grants(rows, by=by, errors=errors)


def members(text):
    rows, errors = read_members(io.BytesIO((MEMBERS + text).encode()))
    return import_members(rows, errors=errors)


def merge(keep, old, staff):
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Card re-issued")


def test_transaction_rows_of_a_merged_code_are_recorded_for_the_survivor(keep, old, staff):
    # given
    merge(keep, old, staff)

    # when: a file names both codes
    report = transactions(
        "T-1,M-OLD,purchase,100,2026-03-01T10:00:00+01:00,pos,,\n"
        "T-2,M-KEEP,purchase,50,2026-03-02T10:00:00+01:00,pos,,\n"
        "T-3,M-OLD,return,20,2026-03-03T10:00:00+01:00,pos,,T-1\n"
    )

    # then: all three on the survivor, one member
    assert (report.new, report.errors, report.members) == (3, [], 1)
    assert set(Transaction.objects.values_list("member__external_id", flat=True)) == {"M-KEEP"}
    assert summary(keep)["lifetime"] == 130 and summary(old)["lifetime"] == 0
    call_command("check_ledger")


def test_a_file_imported_before_a_merge_is_skipped_when_imported_again_after(keep, old, staff):
    # given: a file imported, then the accounts merged
    text = (
        "T-1,M-OLD,purchase,100,2026-03-01T10:00:00+01:00,pos,,\n"
        "T-2,M-KEEP,purchase,50,2026-03-02T10:00:00+01:00,pos,,\n"
    )
    transactions(text)
    merge(keep, old, staff)

    # when: the same file again
    report = transactions(text + "T-3,M-OLD,return,100,2026-03-03T10:00:00+01:00,pos,,T-1\n")

    # then: its rows are skipped, and a return of the old account's purchase reverses it
    assert (report.new, report.skipped, report.errors) == (1, 2, [])
    assert summary(keep)["lifetime"] == 50
    call_command("check_ledger")


def test_grants_to_a_merged_code_go_to_the_survivor_and_are_skipped_again(keep, old, staff):
    # given: one grant before the merge
    grants("G-1,M-OLD,100,Sorry,\n", staff)
    merge(keep, old, staff)

    # when: the same file, with a grant after the merge
    report = grants("G-1,M-OLD,100,Sorry,\nG-2,M-OLD,-30,Too much,\n", staff)

    # then
    assert (report.new, report.skipped, report.errors) == (1, 1, [])
    assert summary(keep)["available"] == 70
    assert LedgerEntry.objects.get(external_id="G-2").member_id == keep.pk
    call_command("check_ledger")


def test_a_merged_code_in_the_members_file_changes_no_contact_details(keep, old, staff):
    # given
    merge(keep, old, staff)
    before = list(Member.objects.order_by("pk").values_list("email", "first_name"))

    # when: the old account's row, with an old address
    report = members("M-OLD,old.address@example.com,Ana,,,,,,\n")

    # then: skipped; neither account changes
    assert (report.new, report.updated, report.skipped, report.errors) == (0, 0, 1, [])
    assert list(Member.objects.order_by("pk").values_list("email", "first_name")) == before


def test_opening_balances_of_a_merged_code_are_skipped_again_and_new_ones_refused(keep, old, staff):
    # given: M-OLD migrated in with 300 points, then merged
    members("M-OLD,m-old@example.com,,,,,,300,\n")
    merge(keep, old, staff)

    # when / then: the same migration file again changes nothing
    report = members("M-OLD,m-old@example.com,,,,,,300,\n")
    assert (report.skipped, report.errors) == (1, [])
    assert summary(keep)["available"] == 300

    # and another amount, or a lifetime balance it never had, is an error naming M-KEEP
    report = members("M-OLD,m-old@example.com,,,,,,300,900\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "opening_lifetime")]
    assert "M-OLD was merged into M-KEEP" in report.errors[0].reason
    assert summary(keep)["lifetime"] == 0
