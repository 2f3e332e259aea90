"""Rules of tiers whose breaking no other test noticed (found by mutation): T3's
highest tier reached, new thresholds applied by a write before the recalculation, and
D2's lowest tier."""

from datetime import timedelta

import pytest

from members.models import TierChange
from points.models import LedgerEntry
from points.services import adjust_points
from tests.conftest import give_return
from tests.tiers.test_status_match import START, tiers_of
from tiers.models import Tier
from tiers.services import degrade_inactive_members, recalculate_all_tiers

pytestmark = pytest.mark.django_db


def set_threshold(code, threshold):
    tier = Tier.objects.get(code=code)
    tier.threshold = threshold
    tier.save()


def test_T2_T3_a_tier_reached_by_new_thresholds_pays_no_bonus_when_reached_again(make_member, buy):
    """T2/T3: Gold held through a threshold change is a tier held before: no bonus later."""
    # given: Silver (1,500), moved to Gold when its threshold fell to 1,500, then back
    member = make_member()
    buy(member, "1500")
    set_threshold("gold", 1500)
    assert recalculate_all_tiers() == 1
    assert tiers_of(member) == ("gold", "gold")
    set_threshold("gold", 3000)
    assert recalculate_all_tiers() == 1
    assert tiers_of(member) == ("silver", "silver")
    # when: purchases take her to Gold's 3,000 points
    buy(member, "1500")
    # then: Gold again, without "Welcome to Gold" (rising back is not a tier-up)
    assert tiers_of(member) == ("gold", "gold")
    bonuses = LedgerEntry.objects.filter(member=member, kind="bonus")
    assert list(bonuses.values_list("reason", flat=True)) == ["Welcome to Silver"]


def test_T3_a_write_before_the_recalculation_moves_the_member_as_the_rules_did(
    make_member, buy, staff
):
    """T2/T3: a member the new thresholds take to Silver is moved by them (rules changed),
    not by the write that reached them first: no "Welcome to Silver" and no bonus, as for
    the members the recalculation job reaches."""
    # given: 600 points (Bronze), Silver's threshold lowered to 500, the job not run yet
    member = make_member()
    buy(member, "600")
    set_threshold("silver", 500)
    # when: an agent gives 10 goodwill points (not tier-counting)
    adjust_points(member=member, points=10, reason="Sorry for the wait", by=staff)
    # then
    assert tiers_of(member) == ("silver", "silver")
    assert not LedgerEntry.objects.filter(member=member, kind="bonus").exists()
    changes = TierChange.objects.filter(member=member).exclude(reason="joined")
    assert list(changes.values_list("reason", flat=True)) == ["rules_changed"]


def test_D2_a_return_never_puts_a_degraded_member_above_the_lowest_tier_s_floor(
    make_member, buy, degradation
):
    """D2: degraded to the lowest tier, a member stays there when a return lowers the qualified."""
    # given: Gold, two periods without a purchase (Bronze), then degradation switched off
    member = make_member(joined_at=START - timedelta(days=1))
    bought = buy(member, "3000", when=START)
    degrade_inactive_members(now=START + timedelta(days=200))
    assert tiers_of(member) == ("gold", "bronze")
    degradation.enabled = False
    degradation.save()
    # when: a return takes her below Gold's threshold
    give_return(member, bought, "1000", when=START + timedelta(days=201))
    # then: Silver qualified, still at the lowest tier (never above the qualified one)
    assert tiers_of(member) == ("silver", "bronze")
