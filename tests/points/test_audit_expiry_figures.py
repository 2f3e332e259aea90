"""What the member page and the API say will expire, against what the expiry job then
takes (E2, E3)."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api.views.common import summary as api_summary
from members.models import Member
from points.models import ExpiryPolicy, LedgerEntry
from points.selectors import points_summary, programme
from points.services import adjust_points, expire_points
from points.services.freezing import freeze_member
from tests.conftest import at, give_return
from tiers.models import DegradationPolicy, Tier
from tiers.services import degrade_inactive_members, grant_status

pytestmark = pytest.mark.django_db


def set_expiry(cycle, starts_on):
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = cycle, starts_on
    policy.save()


def taken(member):
    """The expiry entries the job wrote for the member: [(cutoff, points)]."""
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry")
        .order_by("cutoff")
        .values_list("cutoff", "points")
    )


def read(member, now):
    """GET /api/v1/members/{code} as a till reads it at `now`."""
    return api_summary(Member.objects.get(pk=member.pk), programme(), now=now)


def next_expiry_text(client, member) -> str:
    page = client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    found = re.search(r'<p id="next-expiry">(.*?)</p>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def test_E3_between_a_cutoff_and_its_run_the_member_page_reads_the_tier_then(
    client, login, make_member, buy, staff
):
    # given: monthly expiry; the cutoff at the end of last month has passed and its job
    # has not run yet; a Silver member had 1,200 points then, and is Gold (whose points
    # never expire) by a status match given after the cutoff
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    set_expiry("monthly", cutoff.replace(day=1))
    member = make_member("M-S", joined_at=timezone.now() - timedelta(days=90))
    buy(member, "1100", when=timezone.make_aware(datetime.combine(cutoff, time(9))))
    grant_status(
        member=member,
        tier=Tier.objects.get(code="gold"),
        until=today + timedelta(days=60),
        reason="Competitor card",
        by=staff,
    )
    till = read(member, timezone.now())["next_expiry"]
    login("CX agent")

    # when: an agent opens the member page before the job runs, then the job runs
    shown = next_expiry_text(client, member)
    expire_points()

    # then: the page said what the API said and what the job took (the Silver points of
    # the cutoff), not that Gold points never expire
    assert till == {"cutoff": cutoff, "points": 1200}
    assert taken(member) == [(cutoff, -1200)]
    assert shown == (
        f"1,200 points expire on {cutoff:%-d %b %Y} unless spent before: Gold points never "
        "expire, but the member held a tier whose points do at that cutoff, which the nightly "
        "job has yet to process."
    )


def test_E3_after_downtime_next_expiry_says_what_the_catch_up_takes(make_member, buy):
    # given: monthly expiry; Silver with 1,200 points at 31 January; Gold (exempt) by a
    # purchase on 5 February; the job was down until 1 March, so 31 January and
    # 28 February are both waiting
    set_expiry("monthly", date(2026, 1, 1))
    member = make_member("M-S", joined_at=at("2026-01-02"))
    buy(member, "1100", when=at("2026-01-10"))
    buy(member, "1300", when=at("2026-02-05"))
    assert points_summary(member, now=at("2026-02-06"))["effective_tier"].code == "gold"
    now = at("2026-03-01", 0).replace(minute=2)

    # when: a till reads the member and the marketer's preview / dashboard figure is
    # computed at 00:02, then the job catches up at 00:05
    till = read(member, now)["next_expiry"]
    expire_points(now=now.replace(minute=5))

    # then: what they said is what the catch-up took (1,200 at 31 January)
    assert taken(member) == [(date(2026, 1, 31), -1200)]
    assert till == {"cutoff": date(2026, 1, 31), "points": 1200}


def test_E2_next_expiry_counts_a_status_match_that_ends_before_the_cutoff(make_member, buy, staff):
    # given: monthly expiry; a Silver member with 1,200 points, Gold by a status match
    # until 20 March (it ends at the nightly run of 21 March, before the 31 March cutoff)
    set_expiry("monthly", date(2026, 3, 1))
    member = make_member("M-S", joined_at=at("2026-02-01"))
    buy(member, "1100", when=at("2026-03-01"))
    grant_status(
        member=member,
        tier=Tier.objects.get(code="gold"),
        until=date(2026, 3, 20),
        reason="Competitor card",
        by=staff,
        now=at("2026-03-02"),
    )

    # when: a till reads the member and the marketer previews the cutoff on 5 March;
    # the nightly jobs then run on time
    till = read(member, at("2026-03-05"))["next_expiry"]
    degrade_inactive_members(now=at("2026-03-21", 3))
    expire_points(now=at("2026-04-01", 0).replace(minute=5))

    # then: the points the job took at 31 March were announced
    assert taken(member) == [(date(2026, 3, 31), -1200)]
    assert till == {"cutoff": date(2026, 3, 31), "points": 1200}


def test_E2_next_expiry_counts_a_degradation_due_before_the_cutoff(make_member, buy):
    # given: degradation after 90 days, monthly expiry from 1 April; a Gold member (3,250
    # points) whose last purchase was on 5 January drops to Silver on 5 April
    policy = DegradationPolicy.current()
    policy.enabled = True
    policy.save()
    set_expiry("monthly", date(2026, 4, 1))
    member = make_member("M-G", joined_at=at("2026-01-01"))
    buy(member, "3000", when=at("2026-01-05"))

    # when: a till reads the member on 1 April; the nightly jobs then run on time
    body = read(member, at("2026-04-01"))
    degrade_inactive_members(now=at("2026-04-06", 3))
    expire_points(now=at("2026-05-01", 0).replace(minute=5))

    # then: the same answer that says the member drops on 5 April says what expires on
    # 30 April, as the job took it
    assert body["degrades_on"] == date(2026, 4, 5)
    assert taken(member) == [(date(2026, 4, 30), -3250)]
    assert body["next_expiry"] == {"cutoff": date(2026, 4, 30), "points": 3250}


def test_E2_next_expiry_of_a_long_history_is_what_the_job_takes(make_member, buy, staff):
    """The API and the member page read the points at stake from the entries since the
    cutoff and the member's balance (stake_less_balance), the job from every entry up to
    it (stake_sum): a history with every kind of entry on both sides of the cutoff gives
    the same figure either way."""
    from points.models import PointDefinition
    from points.services import adjust_points
    from rewards.models import Reward
    from rewards.services import redeem
    from tests.conftest import give_return

    # given: monthly expiry; the cutoff at the end of last month has passed, its job not
    # run yet; before it: purchases, a spend, and points still pending at the cutoff
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    set_expiry("monthly", cutoff.replace(day=1))
    member = make_member("M-L", joined_at=timezone.now() - timedelta(days=90))
    before = timezone.make_aware(datetime.combine(cutoff, time(9)))
    first = buy(member, "400", when=before - timedelta(days=3))
    adjust_points(member=member, points=-50, reason="Goodwill taken back", by=staff, now=before)
    purchases = PointDefinition.objects.filter(kind="purchase")
    purchases.update(accrue_delay_days=30)
    buy(member, "250", when=before - timedelta(days=2))  # pending at the cutoff
    purchases.update(accrue_delay_days=0)
    # and since it: a redemption (spent from what was at stake), a return of part of the
    # first purchase (no spending: it takes back its own points), points given
    adjust_points(member=member, points=30, reason="Goodwill", by=staff)
    redeem(member=member, reward=Reward.objects.create(name="Mug", points_cost=120))
    give_return(member, first, "100", when=timezone.now())

    # when: a till reads the member before the job runs, then the job runs
    till = read(member, timezone.now())["next_expiry"]
    expire_points()

    # then: the till was told what the job took
    assert till["cutoff"] == cutoff
    assert taken(member) == [(cutoff, -till["points"])]
    assert till["points"] == 400 - 50 - 120


def test_E2_a_balance_below_zero_has_nothing_at_stake(make_member, buy, staff):
    """Found by mutation: a stake below zero was told as "-600 points expire"."""
    # given: monthly expiry; 600 points spent, then their purchase returned: -600 (P4)
    set_expiry("monthly", date(2026, 3, 1))
    member = make_member("M-S", joined_at=at("2026-02-01"))
    bought = buy(member, "600", when=at("2026-03-02"))
    adjust_points(member=member, points=-600, reason="Spent at the desk", by=staff)
    give_return(member, bought, "600", when=at("2026-03-04"))
    assert Member.objects.get(pk=member.pk).points_balance == -600

    # when: a till reads the member; the job runs after the cutoff
    till = read(member, at("2026-03-05"))["next_expiry"]
    expire_points(now=at("2026-04-01", 0).replace(minute=5))

    # then: nothing was said to expire, and nothing did
    assert till is None and taken(member) == []


def test_E2_a_member_frozen_through_a_passed_cutoff_is_not_told_it_takes_their_points(
    make_member, buy, staff
):
    """Found by mutation: a freeze through the cutoff's day ends at the cutoff's very
    instant, and the summary read it as ended."""
    # given: monthly expiry; 500 points, the member frozen through 31 March
    set_expiry("monthly", date(2026, 3, 1))
    member = make_member("M-S", joined_at=at("2026-02-01"))
    buy(member, "500", when=at("2026-03-02"))
    freeze_member(
        member=member, until=date(2026, 3, 31), reason="Ill", by=staff, now=at("2026-03-20")
    )

    # when: a till reads the member between the cutoff and its run, then the job runs
    till = read(member, at("2026-04-01", 0).replace(minute=2))["next_expiry"]
    expire_points(now=at("2026-04-01", 0).replace(minute=5))

    # then: it took nothing; the points wait for the next cutoff after the freeze
    assert taken(member) == []
    assert till == {"cutoff": date(2026, 4, 30), "points": 500}
