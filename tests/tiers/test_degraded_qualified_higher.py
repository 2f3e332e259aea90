"""D2 and D3 when a degraded member qualifies for a higher tier without a purchase
(tier-counting goodwill, thresholds lowered): the effective tier rises with the
qualified one, keeping the levels lost to inactivity; only a purchase gives those back.
The member page's "as of" tells the same tier."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Member
from points.models import PointDefinition
from points.selectors import member_as_of
from points.services import adjust_points
from points.services.freezing import freeze_member
from tiers.models import Tier
from tiers.services import degrade_inactive_members, recalculate_all_tiers
from tiers.threshold_changes import threshold_change_preview

pytestmark = pytest.mark.django_db


def tiers_of(member):
    m = Member.objects.get(pk=member.pk)
    return m.qualified_tier.code, m.effective_tier.code


@pytest.fixture
def counting(db):
    return PointDefinition.objects.create(
        name="Status points", handle="status", kind="bonus", counts_toward_tier=True
    )


@pytest.fixture
def degraded_gold(make_member, buy, degradation):
    """Gold by 3,500 points, 100 days without a purchase: degraded to Silver."""
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "3500", when=now - timedelta(days=100))
    assert degrade_inactive_members(now=now) == 1
    assert tiers_of(member) == ("gold", "silver")
    return member


def test_goodwill_that_qualifies_a_degraded_member_for_platinum_leaves_them_a_level_below(
    degraded_gold, counting, staff
):
    # when: 5,500 tier-counting points: lifetime 9,000, qualified for Platinum
    adjust_points(member=degraded_gold, points=5_500, reason="Match", by=staff, definition=counting)

    # then: Gold, one level below Platinum as the inactivity says (not Silver, two
    # below); the nightly run has nothing to add, and the "as of" says the same
    assert tiers_of(degraded_gold) == ("platinum", "gold")
    assert degrade_inactive_members(now=timezone.now()) == 0
    assert member_as_of(degraded_gold, timezone.now())["effective_tier"].code == "gold"


def test_a_lower_threshold_that_qualifies_a_degraded_member_higher_keeps_the_level_lost(
    degraded_gold,
):
    # given: the marketer's preview of Platinum at 3,200 counts the member as moving
    preview = threshold_change_preview(Tier.objects.get(code="platinum"), 3_200)

    # when
    Tier.objects.filter(code="platinum").update(threshold=3_200)
    recalculate_all_tiers()

    # then: Gold, a level below Platinum; the preview said so
    assert tiers_of(degraded_gold) == ("platinum", "gold")
    assert (preview["up"], preview["kept"]) == (1, 0)
    assert degrade_inactive_members(now=timezone.now()) == 0


def test_a_frozen_degraded_member_who_qualifies_higher_keeps_the_level_lost(
    degraded_gold, counting, staff
):
    # given: frozen after the drop (no degradation while frozen)
    until = timezone.localdate() + timedelta(days=60)
    freeze_member(member=degraded_gold, until=until, reason="Illness", by=staff)

    # when: goodwill qualifies them for Platinum, by points and then by rules
    adjust_points(member=degraded_gold, points=5_500, reason="Match", by=staff, definition=counting)
    after_goodwill = tiers_of(degraded_gold)
    Tier.objects.filter(code="platinum").update(threshold=9_500)
    recalculate_all_tiers()
    Tier.objects.filter(code="platinum").update(threshold=8_000)
    recalculate_all_tiers()

    # then: the freeze holds the level lost as it was, neither given back nor deepened
    assert after_goodwill == ("platinum", "gold")
    assert tiers_of(degraded_gold) == ("platinum", "gold")


def test_T3_D4_a_member_whom_lowered_thresholds_made_silver_while_away_is_not_told_again(
    make_member, buy, degradation
):
    """Found by an audit of rules.md: her first purchase at Silver told her "Welcome
    back! You are Silver again." though she had never been Silver."""
    from members.models import Notification
    from members.services import email_message

    # given 999 points, 100 days without a purchase; Silver lowered to 900 meanwhile
    member = make_member(joined_at=timezone.now() - timedelta(days=300))
    buy(member, "999", when=timezone.now() - timedelta(days=100))
    Tier.objects.filter(code="silver").update(threshold=900)
    recalculate_all_tiers()
    assert tiers_of(member) == ("silver", "bronze")

    # when she buys
    buy(member, "10", when=timezone.now())

    # then she is Silver, and told she is Silver now, not again
    assert tiers_of(member) == ("silver", "silver")
    (message,) = [email_message(n) for n in Notification.objects.filter(member=member)]
    assert message.subject == "Welcome back! You are Silver now."
    assert "Your points reached Silver while you were away" in message.body
    assert "again" not in message.subject + message.body


def test_D4_a_gold_member_whose_points_fall_to_silver_while_away_is_told_silver_again(
    make_member, buy, degradation
):
    """Found by an audit of the change above: "never held" read the history for Silver
    itself, and a member who went from Bronze to Gold at once was told her points had
    reached Silver (T2: Silver is below the Gold she reached, held before)."""
    from members.models import Notification
    from members.services import email_message

    # given Gold by one purchase, dropped two levels at once to Bronze; Gold raised
    # above her points while she was away: qualified Silver
    degradation.levels_per_step = 2
    degradation.save()
    member = make_member(joined_at=timezone.now() - timedelta(days=400))
    buy(member, "3500", when=timezone.now() - timedelta(days=100))
    degrade_inactive_members(now=timezone.now())
    Tier.objects.filter(code="gold").update(threshold=4_000)
    recalculate_all_tiers()
    assert tiers_of(member) == ("silver", "bronze")

    # when she buys
    buy(member, "10", when=timezone.now())

    # then she is Silver again, and told so
    assert tiers_of(member) == ("silver", "silver")
    restored = Notification.objects.filter(member=member, kind="restoration")
    (message,) = [email_message(n) for n in restored]
    assert message.subject == "Welcome back! You are Silver again."
