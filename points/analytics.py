"""Programme analytics, read from the daily snapshots (points.services.snapshots): the
charts of the CX Manager's analytics page, each as a table of rows that the page draws
and the CSV download writes. A fixed number of small queries: a year of days is a few
hundred rows whatever the number of members."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.days import end_of
from points.models import Campaign, CampaignResult, DailyPoints, DailyTier
from tiers.selectors import Ranking

DAYS = 365
MONTHS = 12


@dataclass
class Chart:
    """A chart as a table: one row per day or month, a column per series."""

    name: str
    title: str
    columns: list[str]  # the first is the day or month
    rows: list[list]

    def series(self) -> list[dict]:
        """The columns after the first, as the page's script draws them."""
        return [
            {"label": label, "values": [row[i] for row in self.rows]}
            for i, label in enumerate(self.columns[1:], start=1)
        ]


def latest() -> DailyPoints | None:
    """The last day taken, if any."""
    return DailyPoints.objects.order_by("-day").first()


def tiers_over_time(last: date) -> Chart:
    """Members by effective tier at the end of each of the last DAYS days."""
    ranking = Ranking()
    first = last - timedelta(days=DAYS - 1)
    counts = {}
    rows = DailyTier.objects.filter(day__gte=first, day__lte=last).order_by()
    for day, tier, members in rows.values_list("day", "tier", "members"):
        counts.setdefault(day, {})[tier] = members
    rows = [
        [day, *(by_tier.get(tier.pk, 0) for tier in ranking.tiers)]
        for day, by_tier in sorted(counts.items())
    ]
    return Chart("tiers", "Members per tier", ["day", *(tier.name for tier in ranking.tiers)], rows)


def outstanding_over_time(last: date) -> Chart:
    """Points available and pending at the end of each of the last DAYS days."""
    first = last - timedelta(days=DAYS - 1)
    rows = DailyPoints.objects.filter(day__gte=first, day__lte=last).order_by("day")
    return Chart(
        "outstanding",
        "Outstanding points",
        ["day", "available", "pending"],
        [list(row) for row in rows.values_list("day", "available", "pending")],
    )


def liability_over_time(last: date) -> Chart:
    """outstanding_over_time in money: what the points available and pending at the end
    of each day were worth (liability)."""
    points = outstanding_over_time(last)
    currency = settings.POINT_VALUE_CURRENCY
    return Chart(
        "liability",
        "Outstanding points in money",
        ["day", f"available ({currency})", f"pending ({currency})"],
        [[day, _worth(available), _worth(pending)] for day, available, pending in points.rows],
    )


def flows_by_month(last: date) -> Chart:
    """Points issued, redeemed, expired and returned in each of the last MONTHS months
    (the last one up to `last`), between what members held at the start of the month
    and at its end, so that each row adds up (held at start + issued - redeemed -
    expired - returned = held at end) and the last ends on the outstanding points."""
    months_back = last.year * 12 + last.month - 1 - (MONTHS - 1)
    first = date(months_back // 12, months_back % 12 + 1, 1)
    flows = ["issued", "redeemed", "expired", "returned"]
    days = DailyPoints.objects.filter(day__gte=first, day__lte=last).order_by("day")
    months = {}  # month: [issued, redeemed, expired, returned, held at its last day]
    for day, *figures, available, pending in days.values_list(
        "day", *flows, "available", "pending"
    ):
        month = months.setdefault(day.replace(day=1), [0, 0, 0, 0, 0])
        month[:4] = [total + figure for total, figure in zip(month[:4], figures, strict=True)]
        month[4] = available + pending
    rows, held = [], None
    for month, (issued, redeemed, expired, returned, end) in months.items():
        if held is None:  # the first month: its end less what the month changed
            held = end - (issued - redeemed - expired - returned)
        rows.append([month.strftime("%Y-%m"), held, issued, redeemed, expired, returned, end])
        held = end
    return Chart(
        "months",
        "Earn and burn per month",
        ["month", "held at start", *flows, "held at end"],
        rows,
    )


def campaign_results(last: date) -> Chart:
    """Each campaign that ran in the last DAYS days, latest first: the points it added
    to purchases, the members and the purchases it reached (CampaignResult, to the end
    of `last`). A campaign switched off before it started never ran: not listed
    unless it earned (a purchase dated ahead); one that ran and reached nobody is, with
    0."""
    first = last - timedelta(days=DAYS - 1)
    results = (
        CampaignResult.objects.filter(campaign__ends_at__gte=end_of(first - timedelta(days=1)))
        # begun by then, or earned by then under dates moved later since
        .filter(Q(campaign__starts_at__lt=end_of(last)) | Q(first_earned_at__lt=end_of(last)))
        .filter(Q(purchases__gt=0) | Q(campaign__in=Campaign.objects.earning()))
        .select_related("campaign")
        .order_by("-campaign__starts_at", "-campaign_id")
    )
    return Chart(
        "campaigns",
        "Campaigns: extra points and members reached",
        ["campaign", "extra points", "members reached", "purchases"],
        [[_campaign_label(r.campaign), r.extra_points, r.members, r.purchases] for r in results],
    )


def _campaign_label(campaign) -> str:
    starts = timezone.localdate(campaign.starts_at)
    return f"{campaign.name} (from {starts.day} {starts:%b %Y})"


def liability(day: DailyPoints) -> dict:
    """What the points members hold at the end of a day are worth to them, in money:
    POINT_VALUE per point, available and pending apart."""
    return {
        "day": day.day,
        "available": day.available,
        "pending": day.pending,
        "available_value": _worth(day.available),
        "pending_value": _worth(day.pending),
        "currency": settings.POINT_VALUE_CURRENCY,
        "point_value": settings.POINT_VALUE,
    }


# The charts by name (the page's order; the CSV download's name), each of the days up to
# the last taken.
CHARTS = {
    "tiers": tiers_over_time,
    "outstanding": outstanding_over_time,
    "liability": liability_over_time,
    "months": flows_by_month,
    "campaigns": campaign_results,
}


def _worth(points: int) -> Decimal:
    """Points in money: POINT_VALUE each, to the cent, half up (as P4 rounds points):
    0.005 is 0.01, not the 0.00 of Decimal's default rounding to even."""
    return (points * settings.POINT_VALUE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
