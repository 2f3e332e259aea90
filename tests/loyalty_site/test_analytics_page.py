"""The CX Manager's programme analytics page and its CSV downloads."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from points.models import DailyPoints, DailyTier
from points.services.snapshots import take_snapshots
from tests.conftest import at, give_return
from tiers.models import Tier

pytestmark = pytest.mark.django_db


@pytest.fixture
def year(tiers):
    """A year of snapshots, as the daily job leaves them."""
    last = date(2026, 11, 30)
    days = [last - timedelta(days=n) for n in range(365)]
    DailyPoints.objects.bulk_create(
        DailyPoints(
            day=d, issued=100, redeemed=40, expired=0, returned=5, available=1000 + n, pending=20
        )
        for n, d in enumerate(reversed(days))
    )
    DailyTier.objects.bulk_create(
        DailyTier(day=d, tier=tier, members=10) for d in days for tier in tiers.values()
    )
    return last


def test_a_marketer_sees_the_outstanding_points_in_money(client, login, year, settings):
    settings.POINT_VALUE, settings.POINT_VALUE_CURRENCY = Decimal("0.05"), "GBP"
    login("Marketer")

    page = client.get("/admin/analytics/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "1,364 points available" in text and "68.20 GBP" in text  # 1,364 x 0.05
    for title in ("Members per tier", "Outstanding points", "Earn and burn per month"):
        assert title in text


def test_the_outstanding_points_in_money_are_a_chart_and_a_csv_over_the_days(
    client, login, year, settings
):
    """DESIGN asks for the liability in money with each chart as a CSV: the money figure
    was the last day's alone, and outstanding.csv had points only (found by an audit)."""
    settings.POINT_VALUE, settings.POINT_VALUE_CURRENCY = Decimal("0.005"), "EUR"
    login("Marketer")

    text = client.get("/admin/analytics/").content.decode()
    rows = client.get("/admin/analytics/liability.csv").content.decode("utf-8-sig").splitlines()

    assert "Outstanding points in money" in text
    assert rows[0] == "day,available (EUR),pending (EUR)"
    assert len(rows) == 366
    # 1,000, 1,001 and 1,364 points at half a cent: 5.005 is 5.01 half up (not 5.00, to even)
    assert rows[1:3] == ["2025-12-01,5.00,0.10", "2025-12-02,5.01,0.10"]
    assert rows[-1] == "2026-11-30,6.82,0.10"


@pytest.mark.parametrize("role", ["CX agent", "Operations", None])
def test_only_those_allowed_see_the_analytics(client, login, year, role):
    login(role)

    assert client.get("/admin/analytics/").status_code == 403
    assert client.get("/admin/analytics/tiers.csv").status_code == 403
    assert b"Programme analytics" not in client.get("/admin/").content


def test_the_page_runs_a_few_queries_whatever_the_days(
    client, login, year, django_assert_max_num_queries
):
    login("Marketer")
    with django_assert_max_num_queries(12):
        assert client.get("/admin/analytics/").status_code == 200


def test_each_chart_downloads_as_csv_with_formulae_escaped(client, login, year):
    Tier.objects.filter(code="gold").update(name="=HYPERLINK(1)")
    login("Marketer")

    tiers = list(
        csv.reader(
            io.StringIO(client.get("/admin/analytics/tiers.csv").content.decode("utf-8-sig"))
        )
    )
    months = client.get("/admin/analytics/months.csv").content.decode("utf-8-sig").splitlines()

    assert tiers[0] == ["day", "Bronze", "Silver", "'=HYPERLINK(1)", "Platinum"]
    assert tiers[-1] == ["2026-11-30", "10", "10", "10", "10"]
    assert len(tiers) == 366
    assert months[0] == "month,held at start,issued,redeemed,expired,returned,held at end"
    # 30 days of November, from October 31's 1,354 held to November 30's 1,384
    assert months[-1] == "2026-11,1354,3000,1200,0,150,1384"
    assert len(months) == 13


def test_an_unknown_chart_is_not_found(client, login, year):
    login("Marketer")
    assert client.get("/admin/analytics/nothing.csv").status_code == 404


def test_before_the_first_snapshot_the_page_says_so(client, login, tiers):
    login("Marketer")
    assert b"No day has been taken yet" in client.get("/admin/analytics/").content


def test_the_page_shows_what_the_job_took(client, login, make_member, buy):
    member = make_member(joined_at=at("2026-03-01"))
    buy(member, "250.00", at("2026-03-02"))
    take_snapshots(now=at("2026-03-04", 1))
    login("Marketer")

    rows = client.get("/admin/analytics/outstanding.csv").content.decode("utf-8-sig").splitlines()

    assert rows[1:] == ["2026-03-01,0,0", "2026-03-02,250,0", "2026-03-03,250,0"]


def test_the_page_shows_each_campaigns_extra_points_and_members_reached(client, login, year):
    from points.models import Campaign, CampaignResult

    # given a campaign that ran in the year with its result, and one long before
    ran = Campaign.objects.create(
        name="=Spring double", multiplier=2, starts_at=at("2026-04-01"), ends_at=at("2026-04-08")
    )
    old = Campaign.objects.create(
        name="Old", multiplier=2, starts_at=at("2024-01-01"), ends_at=at("2024-01-08")
    )
    CampaignResult.objects.create(campaign=ran, extra_points=12_345, members=678, purchases=900)
    CampaignResult.objects.create(campaign=old, extra_points=1, members=1, purchases=1)
    login("Marketer")
    # when the marketer opens the page and downloads the campaigns' CSV
    text = client.get("/admin/analytics/").content.decode()
    download = client.get("/admin/analytics/campaigns.csv")
    # then the campaign that ran is there with its figures, the old one not
    assert "Campaigns: extra points and members reached" in text
    assert "<td>=Spring double (from 1 Apr 2026)</td><td>12,345</td><td>678</td>" in text
    assert "Old (from" not in text
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows == [
        ["campaign", "extra points", "members reached", "purchases"],
        ["'=Spring double (from 1 Apr 2026)", "12345", "678", "900"],
    ]


def test_a_campaign_moved_later_keeps_its_row_with_what_it_earned(client, login, year):
    """Found by an audit: a weekend that earned 7,287 points and was then given new
    dates after the last day taken dropped off the table and the CSV."""
    from points.models import Campaign, CampaignResult

    # given: a weekend that earned in November, moved to 12 December
    moved = Campaign.objects.create(
        name="Double weekend", multiplier=2, starts_at=at("2026-12-12"), ends_at=at("2026-12-14")
    )
    CampaignResult.objects.create(
        campaign=moved,
        extra_points=7_287,
        members=20,
        purchases=22,
        first_earned_at=at("2026-11-06"),
    )
    login("Marketer")

    # when
    text = client.get("/admin/analytics/").content.decode()

    # then: named by its start now, with what it earned
    assert "<td>Double weekend (from 12 Dec 2026)</td><td>7,287</td><td>20</td>" in text


def test_earn_and_burn_per_month_adds_up_to_the_points_members_hold(
    client, login, make_member, buy
):
    # given: points earned before the chart's twelve months, and in them
    member = make_member(joined_at=at("2025-10-01"))
    buy(member, "500.00", at("2025-10-02"))
    purchase = buy(member, "300.00", at("2026-03-02"))
    give_return(member, purchase, "100.00", at("2026-04-10"))
    take_snapshots(now=at("2026-12-01", 1))
    login("Marketer")
    # when
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/admin/analytics/months.csv").content.decode("utf-8-sig"))
        )
    )
    # then: each month goes from what members held at its start to what they held at
    # its end, the next starts there, and the last ends on the points they hold now
    figures = [{k: int(v) for k, v in row.items() if k != "month"} for row in rows]
    for month in figures:
        flows = month["issued"] - month["redeemed"] - month["expired"] - month["returned"]
        assert month["held at start"] + flows == month["held at end"]
    assert [m["held at start"] for m in figures[1:]] == [m["held at end"] for m in figures[:-1]]
    assert figures[0]["held at start"] == 500  # October's purchase, before the chart
    assert figures[-1]["held at end"] == 700  # 500 + 300 - 100 returned
