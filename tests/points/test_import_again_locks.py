"""A file imported again locks only the members it writes for: those whose rows were
all recorded before (transactions, grants) or whose details are already as the file
says (members) are only compared, so a till's purchase for them, or a nightly job's
chunk, does not wait for the import to end (and, in the web, answer 503)."""

import io
import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from members.models import Member
from members.services import erase_member, merge_members
from points.grant_rows import read_grants
from points.models import Transaction
from points.resources import read_transactions
from points.services import (
    grants_sql,
    import_grants,
    import_transactions,
    importing,
    member_bulk,
)
from tests.conftest import postgres_only
from tests.points import member_files
from tests.points.transaction_files import HEADER

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MARCH = "T-1,M-0001,purchase,120.50,2026-03-01,pos,S-1,\nT-2,M-0002,purchase,45.00,2026-03-02,,,\n"


def in_a_session_of_its_own(work) -> None:
    """work() in another thread, committed before this returns (10 s at most)."""

    def run():
        try:
            work()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)


def free(member) -> bool:
    """Whether another transaction can lock the member at once (NOWAIT)."""
    answer = []

    def lock():
        try:
            with transaction.atomic():
                Member.objects.select_for_update(nowait=True).get(pk=member.pk)
            answer.append(True)
        except DatabaseError:
            answer.append(False)

    in_a_session_of_its_own(lock)
    return answer[0]


def imported(text: str, *, while_importing) -> tuple:
    """The file imported, `while_importing()` called as its rows are computed."""
    rows, errors = read_transactions(io.BytesIO((HEADER + text).encode()))
    seen = []
    report = import_transactions(
        rows, errors=errors, on_chunk=lambda done, total: seen.append(while_importing())
    )
    return report, seen


def test_a_file_imported_again_holds_none_of_its_members(make_member):
    # given: the March file, imported
    ana, ben = make_member("M-0001"), make_member("M-0002")
    imported(MARCH, while_importing=lambda: None)

    # when: imported again, with a row for Ben not imported before
    again = MARCH + "T-3,M-0002,purchase,10.00,2026-03-03,,,\n"
    report, seen = imported(again, while_importing=lambda: (free(ana), free(ben)))

    # then: Ana, all of whose rows were imported, was never held; Ben was
    assert (report.new, report.skipped, report.errors) == (1, 2, [])
    assert seen and all(pair == (True, False) for pair in seen)
    assert Transaction.objects.count() == 3


GRANTS = "external_id,member,points,reason,definition\n"
SPRING = "G-1,M-0001,100,Spring goodwill,\nG-2,M-0002,50,Spring goodwill,\n"


def granted(text: str, *, by, while_importing, monkeypatch) -> tuple:
    """The grants file imported, `while_importing()` called as each chunk is read."""
    chunks = grants_sql.staged_chunks
    seen = []

    def watched(size):
        for chunk in chunks(size):
            seen.append(while_importing())
            yield chunk

    monkeypatch.setattr(grants_sql, "staged_chunks", watched)
    rows, errors = read_grants(io.BytesIO((GRANTS + text).encode()))
    return import_grants(rows, errors=errors, by=by), seen


def test_a_grants_file_imported_again_holds_none_of_its_members(make_member, staff, monkeypatch):
    # given: the spring grants, imported
    ana, ben = make_member("M-0001"), make_member("M-0002")
    granted(SPRING, by=staff, while_importing=lambda: None, monkeypatch=monkeypatch)

    # when: imported again, with a row for Ben not imported before
    again = SPRING + "G-3,M-0002,10,Spring goodwill,\n"
    report, seen = granted(
        again, by=staff, while_importing=lambda: (free(ana), free(ben)), monkeypatch=monkeypatch
    )

    # then: Ana, all of whose grants were given, was never held; Ben was
    assert (report.new, report.skipped, report.errors, report.members) == (1, 2, [], 2)
    assert seen and all(pair == (True, False) for pair in seen)
    ana.refresh_from_db(), ben.refresh_from_db()
    assert (ana.points_balance, ben.points_balance) == (100, 60)


CRM = "M-0001,ana@example.com,Ana,,,,,100,\nM-0002,ben@example.com,Ben,,,,,,\n"


def test_a_members_file_holds_only_the_members_it_changes(make_member):
    # given: the CRM's copy of every member, imported (Ana's opening points given)
    ana, ben = make_member("M-0001"), make_member("M-0002")
    member_files.run(CRM)

    # when: its next copy: Ana as she is, Ben with a new e-mail address
    seen = []
    report = member_files.run(
        CRM.replace("ben@", "benjamin@"),
        on_chunk=lambda done, total: seen.append((free(ana), free(ben))),
    )

    # then: Ana was never held; Ben was, and has his new address
    assert (report.new, report.updated, report.skipped, report.errors) == (0, 1, 1, [])
    assert seen == [(True, False)]
    ben.refresh_from_db(), ana.refresh_from_db()
    assert (ana.points_balance, ben.email) == (100, "benjamin@example.com")


def test_a_member_the_file_left_free_keeps_what_others_change_meanwhile(make_member, monkeypatch):
    # given: the CRM's copy imported; the next copy is the same
    ana = make_member("M-0001")
    make_member("M-0002")
    member_files.run(CRM)
    locked = member_bulk.lock_members

    def then_an_agent_edits_ana():
        locked()
        # an agent corrects Ana's address and a till records 30 points, once the import
        # has left her free (in a session of their own: committed before the import reads)
        in_a_session_of_its_own(edit_ana)

    def edit_ana():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # Ana held: the test fails
                Member.objects.filter(pk=ana.pk).update(email="ana.new@example.com")
                Member.objects.filter(pk=ana.pk).update(points_balance=130)
        except DatabaseError:
            pass

    monkeypatch.setattr(member_bulk, "lock_members", then_an_agent_edits_ana)

    # when: imported
    report = member_files.run(CRM)

    # then: the import changed nothing of Ana's: what the agent and the till did stands
    assert (report.updated, report.skipped, report.errors) == (0, 2, [])
    ana.refresh_from_db()
    assert (ana.email, ana.points_balance) == ("ana.new@example.com", 130)


@pytest.fixture(params=["merged", "erased"])
def ana_changed(request, make_member, staff):
    """Ana (M-0001) and Ben (M-0002), and what a CX agent does to Ana's account in a
    session of their own, while an import runs: merge it into M-0003, or erase it."""
    ana, _ = make_member("M-0001"), make_member("M-0002")
    kept = make_member("M-0003")

    def change():
        if request.param == "merged":
            merge_members(survivor=kept, duplicate=ana, by=staff, reason="New card")
        else:
            erase_member(member=ana, by=staff)
        ana.refresh_from_db()

    return ana, lambda: in_a_session_of_its_own(change)


def test_a_member_merged_or_erased_while_a_file_is_imported_again_is_no_error(
    ana_changed, monkeypatch
):
    # given: the March file, imported; Ana's account is one the import will only compare
    ana, change = ana_changed
    imported(MARCH, while_importing=lambda: None)
    locked_referrers = importing.lock_referrers

    def then_changed(locked, plan):  # once the import has read Ana, before her rows
        change()
        return locked_referrers(locked, plan)

    monkeypatch.setattr(importing, "lock_referrers", then_changed)

    # when: the file is imported again with a new row for Ben
    report, _ = imported(
        MARCH + "T-3,M-0002,purchase,10.00,2026-03-03,,,\n", while_importing=lambda: None
    )

    # then: Ana's row is the one imported before (skipped), not "other content"
    assert (report.new, report.skipped, report.errors) == (1, 2, [])
    assert ana.merged_into_id or ana.erased_at


def test_a_member_merged_or_erased_while_grants_are_imported_again_is_no_error(
    ana_changed, staff, monkeypatch
):
    # given: the spring grants, given; Ana's account is one the import will only compare
    ana, change = ana_changed
    granted(SPRING, by=staff, while_importing=lambda: None, monkeypatch=monkeypatch)

    # when: the file is imported again with a new row for Ben, Ana's account changed as
    # its rows are read
    changed = []
    report, _ = granted(
        SPRING + "G-3,M-0002,10,Spring goodwill,\n",
        by=staff,
        while_importing=lambda: changed or changed.append(change()),
        monkeypatch=monkeypatch,
    )

    # then: Ana's grant is the one given before (skipped), not "other content"
    assert (report.new, report.skipped, report.errors) == (1, 2, [])
    assert ana.merged_into_id or ana.erased_at
