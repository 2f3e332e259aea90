"""Time and calendar edge cases of degradation (D2): periods of inactivity are whole
days of the programme's calendar (Europe/Madrid), across the clock changes."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from api.views.common import summary as api_summary
from members.models import Member, Notification
from points.selectors import programme
from points.services import merge_members
from points.services.freezing import freeze_member
from tests.conftest import at
from tiers.models import Tier
from tiers.selectors import Ranking, at_risk, drop_time, next_degradation
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


def test_D2_a_purchase_at_midnight_drops_the_same_night_as_one_at_noon_that_day(
    make_member, buy, degradation
):
    """A date alone in a transactions file is midnight: its member was told 1 April and
    dropped a night before the till's customer who bought at noon the same day."""
    # given: two Silver members who last bought on 1 January 2026, at 00:00 and noon
    midnight = make_member(joined_at=at("2025-12-01"))
    noon = make_member(joined_at=at("2025-12-01"))
    buy(midnight, "1500", when=at("2026-01-01", 0))
    buy(noon, "1500", when=at("2026-01-01", 12))

    # when: a till reads them on 31 March; the nightly job runs on 1 April
    told = [degrades_on(member, at("2026-03-31", 12)) for member in (midnight, noon)]
    degrade_inactive_members(now=at("2026-04-01", 3).replace(minute=15))

    # then: both are told 1 April and both are Silver until the run after it
    assert told == [date(2026, 4, 1), date(2026, 4, 1)]
    assert (tier_of(midnight), tier_of(noon)) == ("silver", "silver")
    degrade_inactive_members(now=at("2026-04-02", 3).replace(minute=15))
    assert (tier_of(midnight), tier_of(noon)) == ("bronze", "bronze")


def test_D2_where_the_clocks_skip_midnight_a_day_s_buyers_still_drop_the_same_night(
    settings, make_member, buy, degradation
):
    """In America/Havana the clocks go from 00:00 to 01:00 on 8 March 2026, the 90th
    day after 8 December 2025: the customer who bought at 00:30 dropped at the run of
    8 March, those who bought later that day at the run of 9 March, all told 8 March."""
    settings.TIME_ZONE = "America/Havana"
    havana = ZoneInfo("America/Havana")
    members = []
    for hour, minute in [(0, 0), (0, 30), (1, 30), (12, 0), (23, 30)]:
        member = make_member(joined_at=datetime(2025, 11, 1, tzinfo=havana))
        buy(member, "1500", when=datetime(2025, 12, 8, hour, minute, tzinfo=havana))
        members.append(member)

    # when: they are read on 26 February; the nightly job runs on 8 March, then 9 March
    told = {degrades_on(member, datetime(2026, 2, 26, 12, tzinfo=havana)) for member in members}
    degrade_inactive_members(now=datetime(2026, 3, 8, 3, 15, tzinfo=havana))
    on_the_8th = {tier_of(member) for member in members}
    degrade_inactive_members(now=datetime(2026, 3, 9, 3, 15, tzinfo=havana))

    # then: all told 8 March, all Silver until the run after it
    assert told == {date(2026, 3, 8)}
    assert (on_the_8th, {tier_of(member) for member in members}) == ({"silver"}, {"bronze"})


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


def test_D2_X2_a_match_ended_on_the_90th_day_leaves_the_drop_to_that_night_s_run(
    admin_client, make_member, buy, staff, degradation
):
    # given: Silver by a purchase at 23:30 on 1 January, Gold by a status match given
    # by mistake; the 90 days without a purchase are 2 January to 1 April
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

    # when: the match is ended at 23:45 on 1 April, then the nightly run (D2)
    end_status_match(
        member=member, reason="Wrong member", by=staff, now=at("2026-04-01", 23).replace(minute=45)
    )
    ended = tier_of(member)
    degrade_inactive_members(now=at("2026-04-02", 3).replace(minute=15))
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    # then: Silver until the run after 1 April, as any member who last bought on 1
    # January; the tier history counts the days as the rule does
    assert (ended, tier_of(member)) == ("silver", "bronze")
    assert "Bronze from 2 Apr 2026: 90 days without a purchase (last purchase 1 Jan 2026)" in (
        page.content.decode()
    )


def test_D2_an_overdue_member_is_told_the_tier_tonight_s_run_gives(make_member, buy, degradation):
    """A night without a run: the member's next step is today too, so tonight's run
    applies both; the page named only the first (found by an audit)."""
    # given: a day a period; Platinum, last purchase at noon on 1 January: Gold from the
    # run after 2 January, Silver after 3 January; the run of 3 January did not happen
    degradation.inactivity_days = 1
    degradation.save()
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "9000", when=at("2026-01-01", 12))
    member = Member.objects.get(pk=member.pk)

    # when: staff read the member at noon on 3 January; then tonight's run
    now = at("2026-01-03", 12)
    when, tier = next_degradation(member, degradation, Ranking(), now)
    degrade_inactive_members(now=at("2026-01-04", 3).replace(minute=15))

    # then: "drops to Silver at tonight's run", as the run does
    assert (drop_time(when, now), tier.code) == ("at tonight's run", "silver")
    assert tier_of(member) == "silver"


def test_D2_the_api_s_date_stays_the_told_day_until_the_run_after_it(make_member, buy, degradation):
    # given: Silver, last purchase on 1 January: told 1 April
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "1500", when=at("2026-01-01", 12))

    # when: a till reads it at 02:00 on 2 April, before the 03:15 run
    told = degrades_on(member, at("2026-04-02", 2))

    # then: still 1 April (2 April would mean the run of 3 April)
    assert told == date(2026, 4, 1)


def test_D2_the_dashboard_s_14_days_are_days_across_the_clock_change(make_member, buy, degradation):
    # given: Silver, last purchase on 27 July: told 25 October, the night the clocks go back
    member = make_member(joined_at=at("2026-06-01"))
    buy(member, "1500", when=at("2026-07-27", 12))

    # when: the dashboard is read just after midnight on 12 October, and at noon (in UTC,
    # as timezone.now() gives the time)
    counts = [
        at_risk(degradation, Ranking(), when.astimezone(UTC), days=14, limit=10, cap=100)[0]
        for when in (at("2026-10-12", 0).replace(minute=30), at("2026-10-12", 12))
    ]

    # then: within the next 14 days at any hour of the day
    assert counts == [1, 1]


@pytest.mark.parametrize("frozen_again", [False, True])
def test_G6_a_drop_after_a_freeze_counts_the_days_since_the_freeze_ended(
    admin_client, make_member, buy, staff, degradation, frozen_again
):
    """The tier history said "180 days without a purchase" of a member frozen for 90 of
    them, whose frozen days never count (found by an audit); and said it again once a
    later freeze replaced that one on the member (found by an audit of rules.md)."""
    # given: Gold, last purchase on 1 January, frozen until 31 March
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "3000", when=at("2026-01-01"))
    freeze_member(
        member=member, until=date(2026, 3, 31), reason="Hospital", by=staff, now=at("2026-02-01")
    )

    # when: the nightly run after the 90 days since the freeze (1 April, then 2 April to
    # 30 June); and, on 1 August, maybe another freeze
    degrade_inactive_members(now=at("2026-07-01", 3).replace(minute=15))
    if frozen_again:
        freeze_member(
            member=member, until=date(2026, 9, 30), reason="Again", by=staff, now=at("2026-08-01")
        )
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))
    as_of = admin_client.get(
        reverse("admin:members_member_change", args=[member.pk]), {"as_of": "2026-07-15"}
    )

    # then: the drop is explained by the freeze it counted from, today and as of July
    assert tier_of(member) == "silver"
    told = (
        "Silver from 1 Jul 2026: 90 days without a purchase (last purchase 1 Jan 2026; "
        "counted from the end of a freeze on 31 Mar 2026)"
    )
    assert told in page.content.decode()
    assert told in as_of.content.decode()


def test_G6_a_merge_carrying_an_ended_freeze_leaves_an_earlier_drop_explained_as_it_was(
    admin_client, make_member, buy, staff, degradation
):
    """Found by an audit: a drop made with no freeze read the member's freeze, and a
    merge carrying the duplicate's ended freeze explained it by that freeze."""
    # given: Gold, last purchase 1 January, never frozen, Silver from 2 April; and a
    # duplicate frozen until 28 February
    member = make_member(joined_at=at("2025-12-01"))
    buy(member, "3000", when=at("2026-01-01"))
    duplicate = make_member(joined_at=at("2025-12-01"))
    freeze_member(
        member=duplicate, until=date(2026, 2, 28), reason="Away", by=staff, now=at("2026-02-01")
    )
    degrade_inactive_members(now=at("2026-04-02", 3))

    # when: the accounts are merged on 1 May
    merge_members(
        survivor=member, duplicate=duplicate, by=staff, reason="Same", now=at("2026-05-01")
    )
    page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))

    # then
    assert (
        "Silver from 2 Apr 2026: 90 days without a purchase (last purchase 1 Jan 2026); "
    ) in page.content.decode()
