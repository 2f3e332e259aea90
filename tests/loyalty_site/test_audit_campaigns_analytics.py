"""Audit of campaigns (P3 and their audiences), the programme analytics and the
dashboard's figures: defects a marketer or a CX agent meets, each as a failing test
named after the rule it protects (DESIGN.md P3, "Programme analytics", "Admin (CX
Manager)"; docs/rules.md P3, "Campaign audiences", "Programme analytics", "Closest to
the next tier"). The ledger is the truth the figures are checked against."""

import csv
import html
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from points.models import Campaign, LedgerEntry, PointDefinition
from points.services import adjust_points
from points.services.snapshots import take_snapshots
from tests.conftest import at
from tests.points.test_campaign_admin import posted  # the form as a marketer fills it
from tiers.services import grant_status

pytestmark = pytest.mark.django_db


def campaign(name, multiplier="2", starts=None, ends=None, channels=(), **more) -> Campaign:
    """A campaign (by default x2 for every tier, channel and store, all March 2026)."""
    return Campaign.objects.create(
        name=name,
        multiplier=Decimal(multiplier),
        starts_at=starts or at("2026-03-01", 0),
        ends_at=ends or at("2026-04-01", 0),
        channels=list(channels),
        **more,
    )


def campaigns_csv(client) -> dict[str, list[str]]:
    """The analytics' campaigns download, by campaign name (label less its start)."""
    rows = list(
        csv.reader(io.StringIO(client.get("/admin/analytics/campaigns.csv").content.decode()))
    )
    return {row[0].split(" (from ")[0]: row[1:] for row in rows[1:]}


def added_in_ledger(campaign_id) -> tuple[int, int]:
    """What the ledger says a campaign added: (extra points, purchases)."""
    key = str(campaign_id)
    shares = [
        entry[key]
        for entry in LedgerEntry.objects.exclude(campaign_points=None).values_list(
            "campaign_points", flat=True
        )
        if key in entry
    ]
    return sum(shares), len(shares)


def panel(client, panel_id) -> str:
    """The text a user reads in one panel of the dashboard."""
    page = client.get(reverse("admin:index")).content.decode()
    section = re.search(rf'<section class="cx-panel" id="{panel_id}">(.*?)</section>', page, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section.group(1))).split())


def test_analytics_a_campaign_given_new_dates_keeps_the_points_it_added_before(
    client, login, make_member, buy
):
    """A marketer reuses last weekend's "Double points weekend" for the next weekend by
    changing its dates (the seed has such a campaign; it is the quickest way to run it
    again). The analytics page then shows the campaign with only the points of the new
    weekend: the 100 extra points and the purchase of the first weekend, which the
    ledger still holds under that campaign, are gone from its figures.

    Rule: docs/rules.md "Programme analytics", Campaigns: for each campaign that ran in
    the last year, the extra points it added to purchases, the members and the
    purchases, "Figures are as earned". The ledger (P7) is the truth: the figures must
    equal the campaign_points the purchases recorded (or the re-dating must be refused)."""
    # given: a weekend campaign that added 100 points to a purchase, and the figures taken
    member = make_member(joined_at=at("2026-03-01"))
    weekend = campaign(
        "Double points weekend", starts=at("2026-03-07", 0), ends=at("2026-03-09", 0)
    )
    buy(member, "100.00", at("2026-03-07"))
    take_snapshots(now=at("2026-03-10", 1))
    login("Marketer")

    # when: the marketer moves it to the next weekend, a member buys then, the job runs
    client.post(
        reverse("admin:points_campaign_change", args=[weekend.pk]),
        posted("Double points weekend", starts="2026-03-14", ends="2026-03-16"),
    )
    buy(member, "100.00", at("2026-03-14"))
    take_snapshots(now=at("2026-03-17", 1))

    # then: the page shows what the ledger says the campaign added, both weekends
    extra, purchases = added_in_ledger(weekend.pk)
    shown = campaigns_csv(client)["Double points weekend"]
    assert [int(shown[0]), int(shown[2])] == [extra, purchases]


def test_analytics_a_campaign_that_ran_stays_in_the_results_when_a_marketer_deletes_it(
    client, login, make_member, buy
):
    """A marketer tidies the campaign list by deleting last month's campaign: the admin
    allows it (no refusal, no warning). From the next nightly run the analytics page no
    longer lists it at all, though it added points to purchases that are still in the
    ledger and in the liability: the marketer cannot see any more what the campaign
    cost or whom it reached (its CampaignResult went with it, on_delete=CASCADE).

    Rule: docs/rules.md "Programme analytics", Campaigns: "For each campaign that ran in
    the last year: the extra points it added to purchases, the members ... and the
    purchases". A campaign that ran must stay in the results (or cannot be deleted:
    switching it off is the way to end it)."""
    # given: a campaign that added 100 points in March, and the figures taken
    member = make_member(joined_at=at("2026-02-01"))
    spring = campaign("Spring double")
    buy(member, "100.00", at("2026-03-02"))
    take_snapshots(now=at("2026-04-02", 1))
    login("Marketer")

    # when: the marketer deletes it, and the nightly job runs
    client.post(reverse("admin:points_campaign_delete", args=[spring.pk]), {"post": "yes"})
    take_snapshots(now=at("2026-04-03", 1))

    # then: it is still in the campaigns' results with what it added
    assert campaigns_csv(client).get("Spring double", [None])[0] == "100"


def test_P3_the_stack_warning_names_every_campaign_it_stacks_with_on_any_channel(
    client, login, tiers, no_campaigns
):
    """A marketer opens "Double points" (x2, every channel). Two other campaigns run at
    the same time: "Till weekend" (x2, tills only) and "Online x3" (ecommerce only).
    The page warns only of "Online x3": on a till purchase the x2 campaigns stack (a
    Gold member earns x8) and the marketer is never told. The warning keeps, per tier,
    only the channel (or store) where the stack is highest and drops the campaigns it
    meets on the others.

    Rule: docs/rules.md P3: "A campaign that runs at the same time as other active
    campaigns for the same tiers and channels says so on its page and when saved:
    'Campaigns stack: ... this campaign runs with Double points (x2); ...'"."""
    # given
    login("Marketer")
    everywhere = campaign("Double points")
    campaign("Till weekend", channels=["pos"])
    campaign("Online x3", multiplier="3", channels=["ecommerce"])

    # when
    page = client.get(reverse("admin:points_campaign_change", args=[everywhere.pk]))

    # then: both campaigns it runs with are named, and where the best rate is earned
    warning = page.content.decode().split('id="campaign-stacks"')[1].split("</ul>")[0]
    assert "Online x3 (x3)" in warning
    assert "Till weekend (x2)" in warning
    assert "a Gold member (x2) x12, a Platinum member (x3) x18, on E-commerce." in warning


def test_dashboard_closest_to_the_next_tier_does_not_offer_silver_to_a_member_who_holds_gold(
    client, login, make_member, tiers, admin_user
):
    """A supervisor matched a customer to Gold (status match, G5). On the dashboard the
    marketer reads, in "Closest to the next tier", "M-MATCHED ... 10 points to Silver",
    while the panel beside it counts the same member in Gold and the member page says
    Gold x2. A marketer running a "you are 10 points from Silver" push would write to a
    Gold member about a lower tier. The list bands members by lifetime points alone.

    Rule: docs/rules.md "Closest to the next tier lists the members with the fewest
    lifetime points left to reach the tier above theirs"; DESIGN.md glossary: every
    benefit follows the effective tier. For a member who holds Gold, Silver is not the
    tier above theirs."""
    # given: 990 tier-counting points (10 short of Silver) and a status match to Gold
    member = make_member("M-MATCHED")
    tier_points = PointDefinition.objects.get(handle="goodwill-tier-points")
    adjust_points(
        member=member, points=990, reason="Migration", by=admin_user, definition=tier_points
    )
    grant_status(
        member=member,
        tier=tiers["gold"],
        until=timezone.localdate() + timedelta(days=60),
        reason="Matched from a competitor's Gold",
        by=admin_user,
    )
    login("Marketer")

    # when
    closest = panel(client, "closest-to-next-tier")

    # then
    assert "Gold 1" in panel(client, "members-per-tier")
    assert "to Silver" not in closest


def test_P3_an_ended_or_switched_off_campaign_does_not_say_it_reaches_members_today(
    client, login, make_member
):
    """A marketer opens a campaign that ended in March, and one that is switched off: each
    page says "Reaches 1 member today, of 1", as if it were giving its multiplier to
    every member now. Neither reaches anyone today: no purchase today earns under
    them. The count reads only the tiers and the birthday month, never the window or
    the switch.

    Rule: docs/rules.md "Campaign audiences": "A campaign's page says how many members
    it reaches today"; P3 status (Ended, Inactive) says it gives nothing now."""
    # given
    make_member()
    ended = campaign("Spring double")  # March 2026, long over
    now = timezone.now()
    off = campaign("Paused", starts=now - timedelta(days=1), ends=now + timedelta(days=5))
    Campaign.objects.filter(pk=off.pk).update(is_active=False)
    login("Marketer")

    # when / then: each says it reaches no one, why, and whom it would
    for shown, why in ((ended, "it ended on 1 Apr 2026, 00:00"), (off, "it is switched off")):
        page = client.get(reverse("admin:points_campaign_change", args=[shown.pk]))
        reach = page.content.decode().split('id="campaign-reach">')[1].split("</li>")[0]
        assert "Reaches 1 member today" not in reach, shown.name
        assert f"Reaches no one today: {why}. Its audience: 1 member, of 1." in reach


def test_P3_a_campaign_name_of_invisible_characters_is_refused(client, login, tiers, no_campaigns):
    """A marketer pastes a name that is only a zero-width space (from a spreadsheet or a
    chat). The campaign is saved: the list shows a row with an empty name link, the
    stack warnings say "this campaign runs with  (x2)", and every purchase's ledger line
    reads "Bronze x1,  x2": nobody can tell which campaign it was.

    Rule: the name is required (DESIGN.md P3: "A campaign has a name"); the CX Manager
    treats invisible characters alone as nothing typed elsewhere (core.staff_input,
    reasons G3/P6). A name nobody can read is no name."""
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_campaign_add"), posted("\u200b"))

    # then
    assert page.status_code == 200
    assert page.context["adminform"].form.errors["name"] == [
        "Give the campaign a name people can read."
    ]
    assert not Campaign.objects.exists()


def test_analytics_a_campaign_switched_off_before_it_started_is_not_listed_as_one_that_ran(
    client, login, make_member, buy
):
    """A marketer prepared "Easter triple" and switched it off before it started. The
    analytics page lists it among the campaigns' results, "Easter triple (from 1 Mar
    2026): 0 extra points, 0 members", as if it had run and reached nobody: a
    campaign that failed, in a report read by management.

    Rule: docs/rules.md "Programme analytics", Campaigns: "For each campaign that ran in
    the last year". A campaign switched off for its whole window never ran
    (P3 status Inactive)."""
    # given
    member = make_member(joined_at=at("2026-02-01"))
    easter = campaign("Easter triple", multiplier="3")
    Campaign.objects.filter(pk=easter.pk).update(is_active=False)
    buy(member, "100.00", at("2026-03-02"))
    take_snapshots(now=at("2026-04-02", 1))
    login("Marketer")

    # when / then
    assert "Easter triple" not in campaigns_csv(client)


def test_analytics_a_campaign_switched_off_after_it_ran_is_listed_even_when_it_reached_nobody(
    client, login, make_member
):
    """A campaign switched off ends then (P3): one that ran half of March for a channel
    nobody bought on, then was switched off, ran and reached nobody: listed with 0."""
    # given
    make_member(joined_at=at("2026-02-01"))
    online = campaign("Online double", channels=["ecommerce"])
    Campaign.objects.filter(pk=online.pk).update(
        is_active=False, switched_off_at=at("2026-03-15", 12)
    )
    take_snapshots(now=at("2026-04-02", 1))
    login("Marketer")

    # when / then
    assert campaigns_csv(client)["Online double"] == ["0", "0", "0"]
