"""Programme analytics (DESIGN.md, "Programme analytics"): the daily snapshot of the
programme, one DailyPoints row per day and one DailyTier row per day and tier, worked
out from the ledger and the tier history, so that missed days are caught up from them.

Rules (docs/rules.md, "Programme analytics"):
- a day is a calendar day in TIME_ZONE; a day is taken once it has ended;
- points are the redeemable ones (what members can spend): issued = earned, bonuses
  and manual adjustments (signed); redeemed = redemptions less cancelled ones; expired;
  returned; available and pending at the end of the day, as P5 says;
- members are counted by effective tier at the end of the day; an account merged into
  another counts until the day it was merged; a back-dated tier change counts from the
  change recorded before it;
- a campaign's result is the points its multiplier added to purchases (each
  campaign's share: what the purchase earned less what it would have earned without
  it), the members and purchases it reached, to the end of the last day taken; returns
  do not take it back;
- every run takes each ended day not taken yet, and the last REWRITE_DAYS again: a file
  imported a few days late counts on the days its rows are dated; so does an expiry
  run late (E3), whatever its delay: the days from its oldest cutoff are taken again,
  and a degradation catch-up's, from its first night. Such a run is taken again by the
  first snapshot that finds it finished and not taken (`in_analytics`), read before the
  ledger: a run that commits while a snapshot reads is left to the next one.
  The first run reaches back ANALYTICS_HISTORY_DAYS, to the first member's joining day
  at most.

Set-based: one grouped query over the ledger, one over the members and the tier
history, whatever the number of days; the same run twice writes the same rows, and two
runs at once write each row once (the last one's)."""

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    DateField,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.days import end_of
from core.models import JobRun
from members.models import Member
from points.models import (
    Campaign,
    CampaignResult,
    DailyPoints,
    DailyTier,
    ExpiryRun,
    LedgerEntry,
)
from points.services import sql
from tiers.models import Tier
from tiers.selectors import degradation_instants

REWRITE_DAYS = 7
Kind = LedgerEntry.Kind
ISSUED = (Kind.EARN, Kind.BONUS, Kind.ADJUSTMENT)
TAKEN_OFF = {  # column: the kinds it sums, as positive amounts
    "redeemed": (Kind.REDEMPTION, Kind.REFUND),
    "expired": (Kind.EXPIRY,),
    "returned": (Kind.RETURN,),
}


def take_snapshots(*, now=None) -> int:
    """Write the snapshot of every ended day not taken yet, and of the last REWRITE_DAYS
    again. Returns the number of days written. Safe to run twice or at once: each day
    is written whole, its points from one statement over the ledger and its members
    from one over the members and their history."""
    now = now or timezone.now()
    last = timezone.localdate(now) - timedelta(days=1)
    with transaction.atomic():
        # Before the ledger is read: what these runs wrote is committed, so it is read.
        expiries, nights = _runs_not_taken()
        first = _first_day(last, expiries, nights)
        if first is None or first > last:
            return 0
        points = _points_by_day(first, last)
        tiers = _tiers_by_day(first, last)
        DailyPoints.objects.bulk_create(
            points,
            update_conflicts=True,
            unique_fields=["day"],
            update_fields=[
                *("issued", "redeemed", "expired", "returned", "available", "pending"),
                "taken_at",
            ],
        )
        DailyTier.objects.bulk_create(
            tiers, update_conflicts=True, unique_fields=["day", "tier"], update_fields=["members"]
        )
        CampaignResult.objects.bulk_create(
            _campaign_results(first, last),
            update_conflicts=True,
            unique_fields=["campaign"],
            update_fields=["extra_points", "members", "purchases", "first_earned_at", "taken_at"],
        )
        expiries.update(in_analytics=True)
        nights.update(in_analytics=True)
    return len(points)


def _runs_not_taken():
    """The expiry runs (a cutoff done) and the finished degradation runs that no
    snapshot has taken yet, fixed by id: those finishing from now on are the next
    snapshot's."""
    expiries = ExpiryRun.objects.filter(in_analytics=False)
    nights = JobRun.objects.filter(job="degradation", finished_at__isnull=False, in_analytics=False)
    return (
        ExpiryRun.objects.filter(pk__in=list(expiries.values_list("pk", flat=True))),
        JobRun.objects.filter(pk__in=list(nights.values_list("pk", flat=True))),
    )


def _first_day(last: date, expiries, nights) -> date | None:
    taken = DailyPoints.objects.aggregate(day=Max("day"))
    if taken["day"] is not None:
        first = min(taken["day"] + timedelta(days=1), last - timedelta(days=REWRITE_DAYS - 1))
        # An expiry run that caught up older cutoffs since (E3): their days again.
        first = min(first, expiries.aggregate(day=Min("cutoff"))["day"] or first)
        # So too the nights a degradation catch-up ran (D2): its drops are dated on
        # them, as far back as CATCH_UP_NIGHTS.
        return min([first, *map(timezone.localdate, degradation_instants(nights))])
    joined = Member.objects.aggregate(first=Min("joined_at"))["first"]
    if joined is None:
        return None
    reach = last - timedelta(days=settings.ANALYTICS_HISTORY_DAYS - 1)
    return max(timezone.localdate(joined), reach)


def _day_of(field: str, first: date, start: datetime):
    """The local day of an entry's `field` from `first` on, NULL before. Expiry entries
    are dated at the end of their cutoff day, the instant it closes: they count on the
    cutoff day (E1), as the marketer reads "expired at the 31 March cutoff"."""
    return Case(
        When(kind=Kind.EXPIRY, then=Case(When(cutoff__gte=first, then=F("cutoff")))),
        When(
            **{f"{field}__gte": start},
            then=TruncDate(field, tzinfo=timezone.get_current_timezone()),
        ),
        output_field=DateField(),
    )


def _days(first: date, last: date):
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _points_by_day(first: date, last: date) -> list[DailyPoints]:
    """One grouped query: the redeemable points issued before `first` and on each day
    since, by kind, and by the day they become available (P5)."""
    start, end = end_of(first - timedelta(days=1)), end_of(last)
    rows = (
        LedgerEntry.objects.filter(redeemable=True)
        .filter(Q(issued_at__lt=end) | Q(kind=Kind.EXPIRY, cutoff__lte=last))
        .values_list(_day_of("issued_at", first, start), _day_of("accrue_at", first, start), "kind")
        .annotate(points=Sum("points"))
        .order_by()
    )
    issued_before = available_before = 0
    by_kind, accrued = defaultdict(Counter), Counter()
    for issued_on, accrues_on, kind, points in rows:
        if issued_on is None:
            issued_before += points
        else:
            by_kind[issued_on][kind] += points
        if accrues_on is None:
            available_before += points
        else:
            accrued[accrues_on] += points  # a day after `last`: still pending then
    snapshots, issued_total, available = [], issued_before, available_before
    taken_at = timezone.now()
    for day in _days(first, last):
        kinds = by_kind[day]
        issued_total += sum(kinds.values())
        available += accrued[day]
        snapshot = DailyPoints(
            day=day,
            issued=sum(kinds[kind] for kind in ISSUED),
            available=available,
            pending=issued_total - available,
            taken_at=taken_at,
        )
        for column, taken_off in TAKEN_OFF.items():
            setattr(snapshot, column, -sum(kinds[kind] for kind in taken_off))
        snapshots.append(snapshot)
    return snapshots


def _campaign_results(first: date, last: date) -> list[CampaignResult]:
    """Each campaign that ran from `first` to `last`, has no result yet, or earned in
    those days, to the end of `last`: the points its multiplier added, the members and
    purchases it reached. One grouped statement over the purchases earned under a
    campaign (sql.campaign_totals), from the earliest of the days taken again, the
    campaigns' starts and the first points each earned: a campaign given new dates
    keeps the points it earned under the old ones."""
    start, until = end_of(first - timedelta(days=1)), end_of(last)
    campaigns = Campaign.objects.filter(starts_at__lt=until).filter(
        Q(ends_at__gt=start) | Q(result__isnull=True)
    )
    bounds = {
        pk: min(starts_at, earned or starts_at)
        for pk, starts_at, earned in campaigns.values_list(
            "pk", "starts_at", "result__first_earned_at"
        )
    }
    since = min([start, *bounds.values()])
    totals = {row[0]: row[1:] for row in sql.campaign_totals(since=since, until=until)}
    # A campaign moved out of these days after earning in them: counted too, if its
    # earlier points are within the statement's reach.
    moved = [pk for pk, (*_, latest) in totals.items() if latest >= start and pk not in bounds]
    for pk, starts_at, earned in Campaign.objects.filter(pk__in=moved).values_list(
        "pk", "starts_at", "result__first_earned_at"
    ):
        if min(starts_at, earned or starts_at) >= since:
            bounds[pk] = since
    taken_at = timezone.now()
    results = []
    for pk in bounds:
        extra, members, purchases, earned, _ = totals.get(pk, (0, 0, 0, None, None))
        results.append(
            CampaignResult(
                campaign_id=pk,
                extra_points=extra,
                members=members,
                purchases=purchases,
                first_earned_at=earned,
                taken_at=taken_at,
            )
        )
    return results


def _tiers_by_day(first: date, last: date) -> list[DailyTier]:
    """Members by effective tier now, then each day's tier changes undone, from the
    latest back: one statement over the members and the history since `first` (a
    back-dated change counts from the change recorded before it: sql.counted_with_moves)."""
    none_day = Value(None, output_field=DateField())
    none_tier = Value(None, output_field=IntegerField())
    zone = timezone.get_current_timezone()
    since = end_of(first)
    members = (
        Member.objects.filter(merged_into=None)
        .values_list(none_day, none_tier, "effective_tier")
        .annotate(n=Count("pk"))
        .order_by()
    )
    # A merged duplicate leaves the programme when it is closed (in the tier it was
    # closed in), as a tier change to no tier.
    closed = (
        Member.objects.filter(merged_at__gte=since)
        .values_list(TruncDate("merged_at", tzinfo=zone), "effective_tier", none_tier)
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts, changes = Counter(), defaultdict(list)
    for day, from_tier, to_tier, n in sql.counted_with_moves(members, closed, since=since):
        if day is None:
            counts[to_tier] += n
        else:
            changes[day].append((from_tier, to_tier, n))

    def undo(day):
        for from_tier, to_tier, n in changes.pop(day, ()):
            if to_tier is not None:  # None: the member was merged into another that day
                counts[to_tier] -= n
            if from_tier is not None:  # None: the member joined that day
                counts[from_tier] += n

    for day in [day for day in changes if day > last]:  # today's changes
        undo(day)
    tiers = list(Tier.objects.values_list("pk", flat=True))
    snapshots = []
    for day in reversed(_days(first, last)):
        snapshots += [DailyTier(day=day, tier_id=tier, members=counts[tier]) for tier in tiers]
        undo(day)
    return snapshots
