"""Large transactions files: the bulk path, chunks that know what the chunks before
them wrote, the rows copied, and two imports at once (PostgreSQL)."""

import pytest
from django.core.management import call_command

from points.models import LedgerEntry, Transaction
from tests.conftest import (
    earned,
    postgres_only,
    run_together,
    summary,
)
from tests.points.transaction_files import run, state

pytestmark = pytest.mark.django_db


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
