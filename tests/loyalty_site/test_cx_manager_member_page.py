"""The CX Manager's member page: balances, progress to the next tier, the next
degradation as the job takes it, and a bounded number of queries."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.days import end_of
from members.models import Member
from points.models import LedgerEntry
from tests.loyalty_site.cx_pages import member_page
from tiers.models import ProgrammeVersion, Tier
from tiers.selectors import Ranking, drop_day_of, members_to_degrade, next_degradation

pytestmark = pytest.mark.django_db


def test_one_point_to_the_next_tier_is_said_in_the_singular(client, login, member, buy):
    login("CX agent")
    buy(member, "999")

    member_html = client.get(member_page(member)).content.decode()
    dashboard_html = client.get(reverse("admin:index")).content.decode()

    assert '<p id="to-next-tier">1 point to Silver</p>' in member_html
    assert "1 point to Silver</td>" in dashboard_html


def test_the_member_page_shows_balances_progress_and_degradation(
    client, login, member, buy, degradation
):
    login("CX agent")
    buy(member, "2500", when=timezone.now() - timedelta(days=10))
    html = client.get(member_page(member)).content.decode()
    assert '<div class="cx-big" id="lifetime">2,500</div>' in html
    assert '<div class="cx-big" id="available">2,600</div>' in html  # + Silver's bonus
    assert "500 points to Gold" in html
    drop = (timezone.localtime(timezone.now() + timedelta(days=80))).strftime("%-d %b %Y")
    assert f"Without a purchase, drops to Bronze on {drop}" in html


def test_T3_progress_follows_thresholds_changed_before_the_recalculation_reaches_the_member(
    client, login, member, buy
):
    """Found by a review: the bar was drawn from the member's stored tier and today's
    thresholds together (a width of -50%)."""
    # given: a Silver member at 1,500 points; Silver raised to 2,000, not recalculated yet
    buy(member, "1500")
    Tier.objects.filter(code="silver").update(threshold=2000)
    ProgrammeVersion.bump()
    login("CX agent")

    html = client.get(member_page(member)).content.decode()

    # then: 500 to Silver, three quarters of the way from Bronze
    assert '<p id="to-next-tier">500 points to Silver</p>' in html
    assert "width: 75.0%" in html


def test_next_degradation_is_when_the_job_would_move_the_member(make_member, buy, degradation):
    ranking = Ranking()
    now = timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "9000", when=now - timedelta(days=60))  # Platinum, inactive for 60 days
    member.refresh_from_db()

    when, tier = next_degradation(member, degradation, ranking, now)

    # the run after that day moves the member, not one on that day (rules.md D2)
    after = end_of(drop_day_of(when))
    # 90 days of the programme's calendar after the day of the last purchase
    ninety_days_on = timezone.localdate(member.last_purchase_at) + timedelta(days=90)
    assert tier.code == "gold" and drop_day_of(when) == ninety_days_on
    assert member not in members_to_degrade(degradation, ranking, after - timedelta(seconds=1))
    assert member in members_to_degrade(degradation, ranking, after)


@pytest.mark.parametrize("levels, expected", [(1, "gold"), (2, "silver"), (3, "bronze")])
def test_D2_next_degradation_and_the_job_take_the_same_step(
    make_member, buy, degradation, levels, expected
):
    # given: a Platinum member, degradation by `levels` tiers a period
    degradation.levels_per_step = levels
    degradation.save()
    ranking, now = Ranking(), timezone.now()
    member = make_member(joined_at=now - timedelta(days=400))
    buy(member, "9000", when=now - timedelta(days=60))
    member.refresh_from_db()

    # when
    when, tier = next_degradation(member, degradation, ranking, now)

    # then: the page's date and tier are the job's, at the run after that day
    after = end_of(drop_day_of(when))
    assert tier.code == expected
    assert members_to_degrade(degradation, ranking, after).get(pk=member.pk).target == tier.pk
    assert member not in members_to_degrade(degradation, ranking, after - timedelta(seconds=1))


def test_the_member_page_with_5000_ledger_entries_runs_a_bounded_number_of_queries(
    client, login, member, django_assert_max_num_queries
):
    from core.bulk import bulk_insert

    login("CX agent")
    now = timezone.now()
    bulk_insert(
        LedgerEntry,
        [
            LedgerEntry(
                member=member,
                kind="adjustment",
                points=1,
                counts_toward_tier=False,
                redeemable=True,
                issued_at=now - timedelta(minutes=i),
                accrue_at=now - timedelta(minutes=i),
                reason=f"Entry {i}",
            )
            for i in range(5000)
        ],
    )
    Member.objects.filter(pk=member.pk).update(points_balance=5000)

    with django_assert_max_num_queries(30):
        page = client.get(member_page(member) + "?ledger=3")

    html = page.content.decode()
    assert "Page 3 of 200 (5,000 entries)" in html
    # newest first, 25 a page, each explained
    assert "Adjusted: Entry 50 (" in html and "Entry 49 (" not in html
