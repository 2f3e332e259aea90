"""P4: returns take back what their purchase earned, in proportion, never more."""

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from points.models import LedgerEntry
from points.services import adjust_points, record_return
from tests.conftest import (
    at,
    earned,
    give_return,
    ledger_state,
    summary,
)

pytestmark = pytest.mark.django_db


# P4


def test_P4_return_reverses_at_the_multiplier_the_purchase_earned(member, buy):
    buy(member, "1000", when=at("2026-03-01"))  # now Silver
    silver_purchase = buy(member, "200", when=at("2026-03-02"))  # 300 points at x1.5
    buy(member, "1400", when=at("2026-03-03"))  # now Gold (x2)
    assert summary(member)["effective_tier"].code == "gold"
    assert earned(give_return(member, silver_purchase, "100")) == -150


def test_P4_returns_round_half_up_and_never_reverse_more_than_awarded(member, buy):
    purchase = buy(member, "3")  # 3 points
    assert earned(give_return(member, purchase, "0.50", when=at("2026-03-05"))) == -1  # 0.5 -> 1
    assert earned(give_return(member, purchase, "1.00", when=at("2026-03-06"))) == -1
    assert (
        earned(give_return(member, purchase, "1.50", when=at("2026-03-07"))) == -1
    )  # what is left
    reversed_total = LedgerEntry.objects.filter(member=member, kind="return").aggregate(
        total=Sum("points")
    )["total"]
    assert reversed_total == -3


def test_P4_a_purchase_returned_in_parts_ends_at_zero(member, buy):
    purchase = buy(member, "30")
    for day in ("2026-03-05", "2026-03-06", "2026-03-07"):
        give_return(member, purchase, "10", when=at(day))
    assert summary(member)["lifetime"] == 0
    assert summary(member)["available"] == 0


def test_P4_return_above_what_is_left_is_refused_and_writes_nothing(member, buy):
    purchase = buy(member, "100")
    give_return(member, purchase, "60")
    before = ledger_state()
    with pytest.raises(ValidationError, match="more than the 40.00 left"):
        give_return(member, purchase, "50", when=at("2026-03-11"))
    assert ledger_state() == before


def test_P4_return_must_name_a_purchase_of_the_member(make_member, buy):
    alice, bob = make_member(), make_member()
    purchase = buy(alice, "100")
    with pytest.raises(ValidationError, match="has no purchase"):
        give_return(bob, purchase, "10")
    with pytest.raises(ValidationError, match="has no purchase"):
        record_return(
            member=alice,
            amount="10",
            occurred_at=at("2026-03-10"),
            external_id="R-x",
            original_external_id="NOPE",
        )


def test_P4_return_below_a_threshold_lowers_the_tier(member, buy):
    purchase = buy(member, "1000")
    assert summary(member)["qualified_tier"].code == "silver"
    give_return(member, purchase, "1")
    s = summary(member)
    assert s["lifetime"] == 999 and s["qualified_tier"].code == "bronze"
    assert s["effective_tier"].code == "bronze"


def test_P4_return_may_take_the_available_balance_below_zero(member, buy, staff):
    purchase = buy(member, "100")
    adjust_points(member=member, points=-100, reason="Spent at the counter", by=staff)
    give_return(member, purchase, "100")
    assert summary(member)["available"] == -100
