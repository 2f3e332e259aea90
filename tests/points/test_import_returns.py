"""Returns in a transactions file: of a purchase before the file or in it, never
more than the purchase, never before it, never of another member's."""

import pytest

from points.models import Transaction
from tests.conftest import (
    at,
    earned,
    summary,
)
from tests.points.transaction_files import run

pytestmark = pytest.mark.django_db


def test_a_return_of_an_earlier_purchase_uses_its_points(alice, buy):
    buy(alice, "1000", when=at("2026-03-01"), external_id="P-OLD")  # Bronze x1 -> Silver
    run("R-1,M-0001,return,500,2026-03-05,,,P-OLD\n")
    assert earned(Transaction.objects.get(external_id="R-1")) == -500
    assert summary(alice)["qualified_tier"].code == "bronze"


def test_a_return_of_another_members_purchase_is_refused(alice, bob):
    report = run("T-1,M-0001,purchase,10,2026-03-01,,,\nT-2,M-0002,return,5,2026-03-02,,,T-1\n")
    assert [(e.line, e.column) for e in report.errors] == [(3, "original_external_id")]
    assert not Transaction.objects.exists()


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "import"])
def test_a_return_dated_before_its_purchase_later_in_the_file_is_refused_as_such(
    alice, bob, dry_run
):
    report = run(
        "T-2,M-0001,return,5,2026-03-01,,,T-1\n"
        "T-1,M-0001,purchase,10,2026-03-02,,,\n"
        "T-4,M-0001,return,5,2026-03-01,,,T-3\n"
        "T-3,M-0002,purchase,10,2026-03-02,,,\n",
        dry_run=dry_run,
    )
    assert [str(e) for e in report.errors] == [
        "line 2, occurred_at: it comes before its purchase T-1",
        "line 4, original_external_id: M-0001 has no purchase 'T-3'",
    ]
    assert not Transaction.objects.exists()


def test_a_return_dated_as_its_purchase_applies_after_it_whatever_the_lines(alice):
    # a file of dates alone: both at midnight, the return listed first
    report = run("T-2,M-0001,return,5,2026-03-02,,,T-1\nT-1,M-0001,purchase,10,2026-03-02,,,\n")

    assert (report.new, report.errors) == (2, [])
    assert earned(Transaction.objects.get(external_id="T-2")) == -5


def test_returns_of_one_purchase_in_the_file_never_exceed_it(alice):
    report = run(
        "T-1,M-0001,purchase,10,2026-03-01,,,\n"
        "T-2,M-0001,return,6,2026-03-02,,,T-1\n"
        "T-3,M-0001,return,6,2026-03-03,,,T-1\n"
    )
    assert [(e.line, e.column) for e in report.errors] == [(4, "amount")]
