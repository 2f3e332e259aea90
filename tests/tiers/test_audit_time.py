"""Time and calendar edge cases of degradation (D2): periods of inactivity are whole
days of the programme's calendar (Europe/Madrid), across the clock changes."""

from datetime import date

import pytest
from django.urls import reverse

from api.views.common import summary as api_summary
from members.models import Member, Notification
from points.selectors import programme
from points.services.freezing import freeze_member
from tests.conftest import at
from tiers.models import Tier
from tiers.services import degrade_inactive_members, end_status_match, grant_status

pytestmark = pytest.mark.django_db


def tier_of(member) -> str:
    return Member.objects.get(pk=member.pk).effective_tier.code


def degrades_on(member, now):
    """The API's `degrades_on`, as a till reads it at `now`."""
    return api_summary(Member.objects.get(pk=member.pk), programme(), now=now)["degrades_on"]


def test_D2_members_who_last_bought_on_the_same_winter_day_drop_the_same_night(
    make_member, buy, degradation
):
    # given: two Silver members whose last purchase was on 1 January 2026, one at noon,
    # one at 23:30; the clocks go forward on 29 March, within their 90 days
    noon = make_member(joined_at=at("2025-12-01"))
    evening = make_member(joined_at=at("2025-12-01"))
    buy(noon, "1500", when=at("2026-01-01", 12))
    buy(evening, "1500", when=at("2026-01-01", 23).replace(minute=30))

    # when: a till reads them in March; the nightly job runs on 2 April
    told = [degrades_on(member, at("2026-03-01")) for member in (noon, evening)]
    degrade_inactive_members(now=at("2026-04-02", 3).replace(minute=15))

    # then: 90 days after 1 January is 1 April for both, and both drop that night
    assert told == [date(2026, 4, 1), date(2026, 4, 1)]
    assert (tier_of(noon), tier_of(evening)) == ("bronze", "bronze")


def test_D2_a_member_who_bought_just_after_midnight_keeps_the_tier_until_the_90th_day(
    make_member, buy, degradation
):
    # given: a Silver member whose last purchase was at 00:30 on 1 August 2026; the
    # clocks go back on 25 October, within the 90 days
    member = make_member(joined_at=at("2026-06-01"))
    buy(member, "1500", when=at("2026-08-01", 0).replace(minute=30))

    # when: a till reads the member in September; the job runs on 30 October
    told = degrades_on(member, at("2026-09-01"))
    degrade_inactive_members(now=at("2026-10-30", 3).replace(minute=15))

    # then: 90 days after 1 August is 30 October: still Silver that day, Bronze from
    # the run that follows it
    assert told == date(2026, 10, 30)
    assert tier_of(member) == "silver"
    degrade_inactive_members(now=at("2026-10-31", 3).replace(minute=15))
    assert tier_of(member) == "bronze"


def test_D2_G6_inactivity_after_a_freeze_ending_in_october_counts_whole_days(
    make_member, buy, staff, degradation
):
    # given: a Silver member frozen until 10 October 2026: inactivity counts again from
    # 11 October, and the clocks go back on 25 October
    member = make_member(joined_at=at("2026-06-01"))
    buy(member, "1500", when=at("2026-07-01"))
    freeze_member(
        member=member, until=date(2026, 10, 10), reason="Hospital", by=staff, now=at("2026-09-20")
    )

    # when: a till reads the member in November
    told = degrades_on(member, at("2026-11-01"))

    # then: 90 days after 11 October is 9 January
    assert told == date(2027, 1, 9)


def test_D2_D3_a_purchase_dated_before_the_last_one_does_not_restore_an_inactive_member(
    make_member, buy, degradation
):
    # given: Silver by a purchase on 10 January, Bronze from the run of 11 April (90
    # days without a purchase)
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "1500", when=at("2026-01-10"))
    degrade_inactive_members(now=at("2026-04-11", 3))

    # when: a purchase of 5 January reaches the programme on 15 April (a till that was
    # offline, a late file); the nightly job runs as every night
    buy(member, "10", when=at("2026-01-05"), channel="import")
    degrade_inactive_members(now=at("2026-04-16", 3))

    # then: the last purchase is still that of 10 January: the member stays Bronze and
    # is not told "Welcome back" one day and "We miss you" the next
    assert tier_of(member) == "bronze"
    told = list(Notification.objects.filter(member=member).values_list("kind", flat=True))
    assert sorted(told) == ["degradation", "tier_up"]


def test_D2_X2_a_drop_late_on_the_90th_day_says_90_days_without_a_purchase(
    admin_client, make_member, buy, staff, degradation
):
    # given: Silver by a purchase at 23:30 on 1 January, Gold by a status match given
    # by mistake; 90 days after the purchase end at 23:30 on 1 April (summer time)
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "1500", when=at("2026-01-01", 23).replace(minute=30))
    gold = Tier.objects.get(code="gold")
    grant_status(
        member=member,
        tier=gold,
        until=date(2026, 6, 1),
        reason="Match",
        by=staff,
        now=at("2026-03-01"),
    )

    # when: the match is ended at 23:45 on 1 April: the member drops at once (D2)
    end_status_match(
        member=member, reason="Wrong member", by=staff, now=at("2026-04-01", 23).replace(minute=45)
    )
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    # then: the tier history counts the days as the rule does
    assert tier_of(member) == "bronze"
    assert "Bronze from 1 Apr 2026: 90 days without a purchase (last purchase 1 Jan 2026)" in (
        page.content.decode()
    )
