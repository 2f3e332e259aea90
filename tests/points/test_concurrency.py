"""Concurrent writers on PostgreSQL: the member lock and the unique external_id decide."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from members.models import Member
from members.services import erase_member
from points.models import LedgerEntry, Transaction
from points.services import record_purchase, sql
from tests.conftest import at, postgres_only, run_together

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), postgres_only]


def test_P8_concurrent_submissions_of_one_external_id_record_it_once(member):
    results = run_together(
        8,
        lambda i: record_purchase(
            member=member, amount=Decimal("100"), occurred_at=at("2026-03-01"), external_id="T-RACE"
        ),
    )
    assert all(isinstance(r, Transaction) for r in results), results
    assert sum(not getattr(r, "skipped", False) for r in results) == 1
    assert Transaction.objects.filter(external_id="T-RACE").count() == 1
    assert LedgerEntry.objects.filter(member=member).count() == 1


def test_P8_concurrent_conflicting_content_is_refused(make_member):
    members = [make_member() for _ in range(4)]
    results = run_together(
        4,
        lambda i: record_purchase(
            member=members[i],
            amount=Decimal("100"),
            occurred_at=at("2026-03-01"),
            external_id="T-X",
        ),
    )
    assert sum(isinstance(r, Transaction) for r in results) == 1
    assert sum(isinstance(r, ValidationError) for r in results) == 3
    assert Transaction.objects.filter(external_id="T-X").count() == 1


def test_T2_concurrent_purchases_of_one_member_keep_caches_equal_to_the_ledger(member, capsys):
    run_together(
        10,
        lambda i: record_purchase(
            member=member, amount=Decimal("150"), occurred_at=at("2026-03-01"), external_id=f"C-{i}"
        ),
    )
    refreshed = Member.objects.get(pk=member.pk)
    assert refreshed.lifetime_points == 150 * 7 + 225 * 3  # Silver after the 7th purchase
    assert LedgerEntry.objects.filter(member=member, kind="bonus").count() == 1
    call_command("check_ledger")


def test_P6_concurrent_negative_adjustments_never_overspend(member, staff):
    from points.services import adjust_points

    adjust_points(member=member, points=500, reason="credit", by=staff)
    results = run_together(
        20, lambda i: adjust_points(member=member, points=-100, reason="debit", by=staff)
    )
    assert sum(isinstance(r, ValidationError) for r in results) == 15
    assert Member.objects.get(pk=member.pk).points_balance == 0
    call_command("check_ledger")


def ledger_of(member):
    return list(
        LedgerEntry.objects.filter(member=member)
        .order_by("pk")
        .values_list("kind", "points", "counts_toward_tier", "redeemable", "issued_at", "reason")
    )


def caches_of(member):
    m = Member.objects.get(pk=member.pk)
    return (m.points_balance, m.lifetime_points, m.qualified_tier_id, m.last_purchase_at)


def test_a_purchase_outside_a_transaction_writes_what_one_under_the_lock_writes(make_member):
    from django.db import transaction

    # given two members alike
    unlocked, locked = make_member(), make_member()

    # when one purchase is recorded on its own (no lock) and the other inside a transaction
    record_purchase(
        member=unlocked, amount=Decimal("150.50"), occurred_at=at("2026-03-01"), external_id="U-1"
    )
    with transaction.atomic():
        record_purchase(
            member=locked, amount=Decimal("150.50"), occurred_at=at("2026-03-01"), external_id="L-1"
        )

    # then the ledger rows and the caches are the same
    assert (
        ledger_of(unlocked)
        == ledger_of(locked)
        == [("earn", 150, True, True, at("2026-03-01"), "Bronze x1")]
    )
    assert caches_of(unlocked) == caches_of(locked)
    call_command("check_ledger")


def test_a_write_between_reading_and_writing_a_purchase_is_never_lost(member, staff):
    from points.services import adjust_points

    # given another writer that credits the member, on its own connection, after the
    # purchase read the member and before it writes
    credited = []

    def credit_in_between(execute, sql, params, many, context):
        if sql.startswith("WITH member AS (UPDATE") and not credited:
            credited.append(
                run_together(
                    1,
                    lambda i: adjust_points(member=member, points=100, reason="goodwill", by=staff),
                )
            )
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(credit_in_between):
        record_purchase(
            member=member, amount=Decimal("50"), occurred_at=at("2026-03-01"), external_id="P-1"
        )

    # then the purchase was written under the lock after the credit, and both count
    assert len(credited) == 1
    assert Member.objects.get(pk=member.pk).points_balance == 150
    assert Transaction.objects.filter(external_id="P-1").count() == 1
    assert [kind for kind, *_ in ledger_of(member)] == ["adjustment", "earn"]
    call_command("check_ledger")


def test_a_tier_up_purchase_outside_a_transaction_writes_its_history_with_it(member):
    # when a purchase takes the member to Silver
    record_purchase(
        member=member, amount=Decimal("1000"), occurred_at=at("2026-03-01"), external_id="P-1"
    )

    # then the tier history, the bonus and the purchase are all there
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "silver"
    assert member.tier_changes.filter(reason="upgrade").count() == 1
    assert LedgerEntry.objects.filter(member=member, kind="bonus").count() == 1
    call_command("check_ledger")


def test_a_purchase_read_before_an_erasure_and_written_after_it_earns_nothing(
    member, staff, monkeypatch
):
    """Found by a race audit: the purchase without the member lock read the account,
    the erasure committed, then the purchase wrote (an erasure changes none of the
    balances its write checks): an erased account earned 40 points."""
    write = sql.insert_transaction

    def erased_in_between(*args, **kwargs):
        monkeypatch.setattr(sql, "insert_transaction", write)  # once
        erase_member(member=Member.objects.get(pk=member.pk), by=staff)  # commits
        return write(*args, **kwargs)

    monkeypatch.setattr(sql, "insert_transaction", erased_in_between)

    with pytest.raises(ValidationError, match="receives no more points"):
        record_purchase(
            member=member, amount=Decimal("20"), occurred_at=at("2026-03-01"), external_id="T-1"
        )

    erased = Member.objects.get(pk=member.pk)
    assert erased.erased_at and not LedgerEntry.objects.filter(member=erased).exists()
    assert not Transaction.objects.exists()
