"""Concurrent writers on PostgreSQL: the member lock and the unique external_id decide."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Member
from points.models import LedgerEntry, Transaction
from points.services import record_purchase
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
