"""Audit of Member 360 "to the last point" (DESIGN.md, "Member 360"): what the member
page says of merged accounts and their tier history, checked against what happened."""

from decimal import Decimal

import pytest

from members.services import merge_members
from points.explanations import entry_explanation, tier_history
from points.models import LedgerEntry, PointDefinition
from points.selectors import programme
from tests.conftest import at
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db


def merge(survivor, duplicate, by, when):
    return merge_members(
        survivor=survivor, duplicate=duplicate, by=by, reason="Same customer", now=when
    )


def test_a_degradation_names_the_last_purchase_the_member_had_then_after_later_merges(
    make_member, buy, degradation, staff
):
    # given: the kept account M-KEEP, Silver, last purchase 1 Jan 2026; an old account
    # M-OLD bought on 20 Jan and was merged on 25 Jan into M-MID, another account of
    # the customer's that M-KEEP does not hold yet
    keep = make_member("M-KEEP", joined_at=at("2025-12-01"))
    mid = make_member("M-MID", joined_at=at("2025-12-01"))
    old = make_member("M-OLD", joined_at=at("2025-12-01"))
    buy(keep, "1500", when=at("2026-01-01"))
    buy(old, "10", when=at("2026-01-20"))
    merge(mid, old, staff, at("2026-01-25"))
    # M-KEEP degraded at the run of 2 Apr: 90 days (2 Jan to 1 Apr) without a purchase
    # since its own last purchase of 1 Jan
    degrade_inactive_members(now=at("2026-04-02"))

    # when: M-MID (holding M-OLD's purchase) is merged into M-KEEP on 1 May
    merge(keep, mid, staff, at("2026-05-01"))

    # then: the degradation of 2 Apr still reads as it did on 2 Apr, from M-KEEP's own
    # last purchase of 1 Jan; the purchase of 20 Jan was not M-KEEP's until 1 May
    ranking = programme().ranking
    degradation_row = next(c for c in tier_history(keep, ranking) if c.reason == "degradation")
    assert "90 days without a purchase (last purchase 1 Jan 2026)" in degradation_row.explanation


def test_a_purchase_names_every_rate_it_earned_at_when_the_earn_rate_is_not_one(make_member, buy):
    # given: the programme gives 10 points per euro; a Silver member
    PointDefinition.objects.filter(handle="purchase-points").update(earn_rate=Decimal("10"))
    member = make_member()
    buy(member, "100", when=at("2026-03-01"))  # 1,000 points: Silver

    # when: a purchase of 120.50 at Silver x1.5 earns 1,807 points (120.50 x 10 x 1.5)
    txn = buy(member, "120.50", when=at("2026-03-02"))
    entry = LedgerEntry.objects.select_related("transaction", "definition").get(
        transaction=txn, kind="earn"
    )

    # then: the ledger line gives every factor, so that the agent's sum comes out
    assert entry.points == 1807
    assert entry_explanation(entry) == (
        f"Purchase {txn.external_id} of 120.50, earned at Purchase points x10, Silver x1.5"
    )


def test_a_degradation_names_the_purchase_it_counted_from_not_one_recorded_after_it(
    make_member, buy, degradation
):
    """Found by a review: a purchase dated the evening before the run and imported the
    next morning made the run's line read "0 days without a purchase (last purchase
    6 Apr 2026)", for a drop 90 days of inactivity made."""
    # given: Silver by a purchase on 1 January, degraded by the run of 2 April
    member = make_member("M-LATE", joined_at=at("2025-12-01"))
    buy(member, "1500", when=at("2026-01-01"))
    degrade_inactive_members(now=at("2026-04-02", 3))

    # when: a purchase of 1 April evening is recorded the morning after the run
    buy(member, "10", when=at("2026-04-01", 20), now=at("2026-04-02", 9))

    # then: the run's line still counts from 1 January
    ranking = programme().ranking
    degradation_row = next(c for c in tier_history(member, ranking) if c.reason == "degradation")
    assert "90 days without a purchase (last purchase 1 Jan 2026)" in degradation_row.explanation
