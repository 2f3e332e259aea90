"""The CSV import of transactions through the earning rules: rows apply in time
order, a file imported again writes nothing, a dry run writes nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from points.models import LedgerEntry, PointDefinition, Transaction
from tests.conftest import (
    at,
    earned,
    earning_at_the_bounds,
    summary,
)
from tests.points.transaction_files import run, state
from tiers.models import DegradationPolicy
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


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
    report = run("T-9,M-0001,purchase,100,2026-04-16,,,\n", now=at("2026-04-16"))
    assert summary(alice)["effective_tier"].code == "gold"
    assert earned(Transaction.objects.get(external_id="T-9")) == 200
    # the import counts her among the members who changed tier (found by a review: 0)
    assert report.tier_changes == 1


def test_reimporting_the_same_file_writes_nothing_and_skips_every_row(alice):
    text = "T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0001,return,5,2026-03-02,,,T-1\n"
    run(text)
    before = state()
    report = run(text)
    assert (report.new, report.skipped, report.errors) == (0, 2, [])
    assert state() == before


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
