"""A status match through a merge: the duplicate's goes on for the survivor to its
last day, unless the survivor has more, and the page explains the tier by it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import TierChange
from points.models import (
    LedgerEntry,
)
from tests.members.merging import fresh, merge

pytestmark = pytest.mark.django_db


def match(member, code, days, staff, reason="Gold card of a competitor"):
    from tiers.models import Tier
    from tiers.services import grant_status

    until = timezone.localdate() + timedelta(days=days)
    tier = Tier.objects.get(code=code)
    return grant_status(member=member, tier=tier, until=until, reason=reason, by=staff)


def test_a_status_match_of_the_duplicate_goes_on_for_the_survivor_to_its_last_day(keep, old, staff):
    # given: the old account is Gold by status match for 60 days; the kept one Bronze
    grant = match(old, "gold", 60, staff)

    # when
    survivor = merge(keep, old, staff)

    # then: the survivor is Gold by the same match, to the same day, and the history
    # says why; the closed account holds no tier any more
    assert (survivor.effective_tier.code, survivor.qualified_tier.code) == ("gold", "bronze")
    assert survivor.granted_until == grant.until
    from tiers.models import StatusGrant

    carried = StatusGrant.objects.get(member=keep, ended_at=None)
    assert carried.reason == "Carried over from M-OLD (merged): Gold card of a competitor"
    assert StatusGrant.objects.get(pk=grant.pk).end == "merged"
    change = TierChange.objects.filter(member=keep).first()
    assert (change.reason, change.to_tier.code) == ("merge", "gold")
    closed = fresh(old)
    assert (closed.effective_tier.code, closed.granted_tier) == ("bronze", None)
    assert not LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").exists()


def test_the_page_explains_a_survivors_tier_by_the_status_match_it_carries(
    client, login, keep, old, staff
):
    # given a Bronze survivor of a Gold-by-status-match account
    match(old, "gold", 60, staff)
    merge(keep, old, staff)

    # when an agent opens it
    login("CX agent")
    page = client.get(reverse("admin:members_member_change", args=[keep.pk]))

    # then Gold is explained by the match, not as a wait for a purchase
    today = f"{timezone.localdate():%-d %b %Y}"
    assert page.context["tier_explanation"] == (
        f"Gold since {today}: accounts merged by agent: the status match carries on "
        "(qualified for Bronze)"
    )


def test_a_status_match_is_not_carried_where_the_survivor_has_more(
    keep, old, make_member, buy, staff
):
    # given: the kept account is Platinum by its own match, and the old one Gold by one
    match(keep, "platinum", 30, staff)
    match(old, "gold", 90, staff)

    # when
    survivor = merge(keep, old, staff)

    # then: the survivor keeps its own match; the duplicate's ends
    from tiers.models import StatusGrant

    assert survivor.effective_tier.code == "platinum"
    assert not StatusGrant.objects.filter(member=old, ended_at=None).exists()
    assert survivor.granted_until == timezone.localdate() + timedelta(days=30)

    # and a survivor who qualifies for the tier once merged needs no match
    other, gold_card = make_member("M-OTHER"), make_member("M-GOLDCARD")
    buy(other, "3200")
    match(gold_card, "gold", 60, staff)
    survivor = merge(other, gold_card, staff)
    assert (survivor.effective_tier.code, survivor.granted_tier) == ("gold", None)


def test_a_status_match_is_carried_to_a_survivor_degraded_below_it(
    keep, old, buy, staff, degradation
):
    """Found by a review: the customer, Gold by the old account's match, was Silver after
    the merge, as the kept account qualifies for Gold but was degraded."""
    # given: the kept account qualifies for Gold and was degraded to Silver (100 days
    # without a purchase); the old one is Gold by a match for 90 days
    from tiers.services import degrade_inactive_members

    now = timezone.now()
    buy(keep, "3000", when=now - timedelta(days=100), now=now - timedelta(days=100))
    degrade_inactive_members(now=now)
    assert (fresh(keep).qualified_tier.code, fresh(keep).effective_tier.code) == ("gold", "silver")
    grant = match(old, "gold", 90, staff)

    # when
    survivor = merge(keep, old, staff)

    # then: Gold to the match's last day
    assert survivor.effective_tier.code == "gold"
    assert survivor.granted_until == grant.until


def test_a_survivor_reaching_silver_with_a_gold_match_carried_is_told_the_match_goes_on(
    keep, old, staff, buy
):
    """Found by a review: the tier-up message was written before the match came over,
    "From now on your purchases earn 1.5 times the points", while they earned x2."""
    from django.core import mail

    from members.tasks import send_notifications_task

    # given: the kept account Bronze (600 points), the old one Bronze (500) and Gold by
    # status match
    buy(keep, "600")
    buy(old, "500")
    match(old, "gold", 60, staff)
    send_notifications_task.delay()
    sent = len(mail.outbox)

    # when: merged, the kept account reaches Silver by points and carries the match
    survivor = merge(keep, old, staff)
    send_notifications_task.delay()

    # then
    assert (survivor.qualified_tier.code, survivor.effective_tier.code) == ("silver", "gold")
    (message,) = mail.outbox[sent:]
    assert (
        "You have reached Silver. Your Gold status match goes on until its last day; then "
        "your purchases earn 1.5 times the points, as Silver."
    ) in " ".join(message.body.split())


def test_a_match_carried_by_an_agents_merge_is_still_the_supervisors_grant(
    keep, old, staff, django_user_model
):
    """Found by a review: the page said "granted by" the agent who merged, who may grant
    no match."""
    from tiers.models import StatusGrant

    # given: a supervisor's Gold match on the old account
    supervisor = django_user_model.objects.create_user("sam", is_staff=True)
    match(old, "gold", 60, supervisor)

    # when: an agent merges it into the kept one
    merge(keep, old, staff)

    # then
    assert StatusGrant.objects.get(member=keep, ended_at=None).granted_by == supervisor
