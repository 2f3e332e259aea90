import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.days import end_of, latest_allowed
from core.db import Compiled
from members.models import Member, TierChange
from points.expiry_selectors import (
    cutoff_instant,
    member_cutoff,
    since_the_end,
    stake_less_balance,
)
from points.models import (
    Campaign,
    CampaignResult,
    CampaignStatus,
    DailyPoints,
    ExpiryPolicy,
    ExpiryRun,
    LedgerEntry,
    PointDefinition,
)
from tiers.models import DegradationPolicy, ProgrammeVersion
from tiers.selectors import Ranking


@dataclass(frozen=True)
class Programme:
    """The configuration every earning and summary reads: tiers, definitions, campaigns
    and the two policies."""

    version: uuid.UUID
    ranking: Ranking
    definitions: dict[str, PointDefinition]
    campaigns: list[Campaign]
    degradation: DegradationPolicy
    expiry: ExpiryPolicy
    # The last cutoff whose expiry has run (E3 runs them in order); None before any.
    expired_through: date | None = None
    # What services work out from the above, kept as long as the programme is.
    earnings: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property  # asked for every purchase; the programme is cached per version
    def purchase_definition(self) -> PointDefinition:
        """The one active definition of kind purchase (P1)."""
        for definition in self.definitions.values():
            if definition.kind == PointDefinition.Kind.PURCHASE and definition.is_active:
                return definition
        raise ValidationError("No active purchase definition: a marketer must activate one.")

    @cached_property
    def _by_handle(self) -> dict[str, PointDefinition]:
        return {handle.lower(): d for handle, d in self.definitions.items()}

    def named(self, handle: str) -> PointDefinition | None:
        """The definition a file or a caller names by its handle, whatever its case:
        handles are unique whatever their case (P1), as the upgrade that made them so
        compared them (str.lower)."""
        return self._by_handle.get(handle.lower())

    def definition(self, handle: str) -> PointDefinition:
        """A system definition by its handle (PointDefinition.SYSTEM_HANDLES)."""
        try:
            return self.definitions[handle]
        except KeyError:
            raise ValidationError(
                f"The point definition {handle!r} is missing: restore it under Point "
                "definitions (it is created by the points migrations)."
            ) from None

    @cached_property
    def _latest_end_first(self) -> list[tuple]:
        """(end, place, campaign) of each campaign, the latest end first: every campaign
        that ever ran stays (a late purchase may earn under it), and a purchase looks
        only at those that end after it."""
        ends = [(c.runs_until, place, c) for place, c in enumerate(self.campaigns)]
        return sorted(ends, key=lambda end: end[0], reverse=True)

    def campaigns_for(
        self, *, at, tier_id: int, channel: str, store: str, amount, birth_date
    ) -> list[Campaign]:
        """The campaigns a purchase earns under (Campaign.applies_to_purchase), in the
        programme's order."""
        found = []
        for ends, place, c in self._latest_end_first:
            if ends <= at:
                break  # this one and those after it ended before the purchase
            if c.applies_to_purchase(
                at=at,
                tier_id=tier_id,
                channel=channel,
                store=store,
                amount=amount,
                birth_date=birth_date,
            ):
                found.append((place, c))
        return [c for _, c in sorted(found, key=lambda pair: pair[0])]


_programme: Programme | None = None


class Reach(NamedTuple):
    members: int  # reached now: the audience while the campaign runs, else none
    open: int  # of all open members
    month_name: str  # the month of "now", for a birthday campaign
    audience: int  # those its tiers and birthday month take in, running or not
    status: CampaignStatus  # at "now": only a running campaign reaches anyone


def campaign_reach(campaign: Campaign, now) -> Reach:
    """How many open members a campaign's member audience takes in at `now`: those at
    one of its tiers (their effective tier) and, for a birthday campaign, born in this
    month (TIME_ZONE), read as Campaign.applies_to_purchase reads them; none while it
    does not run (ended, not started or switched off), though its audience is counted.
    Its channels, stores and minimum amount limit purchases, not members. One query, a
    scan of the members."""
    local = timezone.localtime(now)
    audience = Q()
    if campaign.limited_to_tier_ids:
        audience &= Q(effective_tier_id__in=campaign.limited_to_tier_ids)
    if campaign.birthday_month_only:
        audience &= Q(birth_date__month=local.month)
    counts = Member.objects.filter(merged_into=None, erased_at=None).aggregate(
        open=Count("pk"), reached=Count("pk", filter=audience) if audience else Count("pk")
    )
    status = campaign.status_at(now)
    members = counts["reached"] if status == CampaignStatus.RUNNING else 0
    return Reach(members, counts["open"], f"{local:%B}", counts["reached"], status)


def why_campaign_is_kept(campaign: Campaign, now) -> str | None:
    """Why a campaign cannot be deleted, or None: one that has started or earned points
    (moved to later dates since) is kept, since its results in the programme analytics
    and the ledger lines it multiplied name it; switching it off ends it. So is one that
    starts within the time ahead a purchase may be dated (core.days: a day), in
    which a till may already have recorded one, or be recording one now. Three queries
    at most (campaign_has_earned), for a campaign not started yet."""
    if campaign.starts_at <= now:
        starts = timezone.localtime(campaign.starts_at)
        done = f"started on {starts.day} {starts:%b %Y}"
    elif campaign.starts_at <= latest_allowed(now):
        done = "starts within a day, and purchases dated in it may already have earned under it"
    elif campaign_has_earned(campaign):
        done = "has earned points"
    else:
        return None
    return (
        f"“{campaign.name}” {done}: switch it off instead of deleting it, so that "
        "what it earned stays in the programme analytics and in the ledger's lines."
    )


def campaign_has_earned(campaign: Campaign) -> bool:
    """Whether a purchase has earned under the campaign: its nightly results, or the
    ledger for what they do not count yet: entries issued after the last day the
    snapshot job took (through the partial index of campaign earnings; the whole
    ledger's would take longer as it grows). Three queries at most."""
    if CampaignResult.objects.filter(campaign=campaign, purchases__gt=0).exists():
        return True
    earnings = LedgerEntry.objects.filter(campaign_points__isnull=False)
    if (taken := DailyPoints.objects.aggregate(last=Max("day"))["last"]) is not None:
        earnings = earnings.filter(issued_at__gte=end_of(taken))
    return earnings.filter(campaign_points__has_key=str(campaign.pk)).exists()


def programme(version: uuid.UUID | None = None) -> Programme:
    """The programme, cached per process while its version token is unchanged.

    Pass the token read in the caller's own query to save a round trip.
    """
    global _programme
    version = version or ProgrammeVersion.current_token()
    version = uuid.UUID(str(version)) if version else None  # SQLite gives hex text
    kept = _programme  # once: another thread may replace it meanwhile
    if version is None or kept is None or kept.version != version:
        kept = _programme = Programme(
            version=version,
            ranking=Ranking(),
            definitions={d.handle: d for d in PointDefinition.objects.all()},
            campaigns=list(Campaign.objects.earning().prefetch_related("tiers")),
            degradation=DegradationPolicy.current(),
            expiry=ExpiryPolicy.current(),
            expired_through=ExpiryRun.objects.aggregate(last=Max("cutoff"))["last"],
        )
    return kept


def _pending_sum(now):
    """Of a member's redeemable entries: those issued but not yet accrued (P5)."""
    return Sum("points", filter=Q(accrue_at__gt=now))


class Balances(NamedTuple):
    available: int
    pending: int

    @classmethod
    def of(cls, member: Member, pending_sum) -> "Balances":
        """The available balance: the cached balance of redeemable points (P7) less
        those still pending (P5); and the pending points. Pending points are never
        below zero: a reversal still pending only cancels the pending points it
        reverses. The one place it is worked out."""
        return cls.of_balance(member.points_balance, pending_sum)

    @classmethod
    def of_balance(cls, balance: int, pending_sum) -> "Balances":
        """Balances.of a balance of redeemable points (pending included) however read:
        the cache, or the ledger up to a moment (member_as_of)."""
        pending = max(pending_sum or 0, 0)
        return cls(balance - pending, pending)


def _redeemable_entries(member: Member):
    return LedgerEntry.objects.filter(member=member, redeemable=True)


def balances(member: Member, *, now=None) -> Balances:
    """A member's available and pending points."""
    now = now or timezone.now()
    # The pending entries alone, read by the (member, accrue_at) index: a corporate
    # card's million entries are not summed to find its few pending ones.
    pending = _redeemable_entries(member).filter(accrue_at__gt=now)
    return Balances.of(member, pending.aggregate(total=_pending_sum(now))["total"])


def pending_by_member(members, *, now) -> dict[int, int]:
    """The pending sums (Balances.of's `pending_sum`) of many members at once, by member
    id; `members` is a queryset (or subquery) of member ids. Members with no pending
    entry are left out."""
    return dict(
        LedgerEntry.objects.filter(member_id__in=members, redeemable=True, accrue_at__gt=now)
        .order_by()
        .values("member_id")
        .annotate(pending=_pending_sum(now))
        .values_list("member_id", "pending")
    )


def balances_and_stake(
    member: Member, plan: Programme, *, now
) -> tuple[Balances, date | None, int]:
    """balances(), the next cutoff that can take the member's points (member_cutoff;
    none without an expiry cycle, or when their tier then never expires: E1, E2) and what
    points_at_stake gives them at it (0 without one), in one prepared query: the API's
    summary and the member page read them on every request. Only the entries pending or
    since the cutoff are read (stake_less_balance), with the member's balance as read."""
    cutoff, tier_id = member_cutoff(member, plan, now)
    end = cutoff and cutoff_instant(cutoff)
    if not plan.ranking.by_pk[tier_id].points_expire:
        cutoff = None
    if cutoff is None:
        (pending,) = _pending.first(member_id=member.pk, now=now) or (0,)
        return Balances.of(member, pending), None, 0
    row = _pending_and_stake.first(member_id=member.pk, now=now, end=end, cutoff=cutoff)
    pending, stake_less = row or (0, 0)
    return Balances.of(member, pending), cutoff, max(member.points_balance + stake_less, 0)


def _member_sums(member_id, where: Q | None = None, **sums):
    """`sums` over a member's redeemable entries (those `where` says, if given), in one
    row; none when no entry counts."""
    entries = LedgerEntry.objects.filter(member_id=member_id, redeemable=True)
    return (
        entries.filter(where or Q()).order_by().values("member").annotate(**sums).values_list(*sums)
    )


_STAND_INS = dict(member_id=-7, now=datetime(1, 1, 1, 0, 0, 7, tzinfo=UTC))
_pending = Compiled(
    lambda member_id, now: _member_sums(member_id, Q(accrue_at__gt=now), pending=_pending_sum(now)),
    **_STAND_INS,
)
_pending_and_stake = Compiled(
    lambda member_id, now, end, cutoff: _member_sums(
        member_id,
        Q(accrue_at__gt=now) | since_the_end(end),
        pending=_pending_sum(now),
        at_stake=stake_less_balance(end, ~Q(kind=LedgerEntry.Kind.EXPIRY, cutoff=cutoff)),
    ),
    **_STAND_INS,
    end=datetime(1, 1, 1, 0, 0, 8, tzinfo=UTC),
    cutoff=date(1, 1, 9),
)


def points_summary(member: Member, *, now=None) -> dict:
    """What a CX agent tells a customer: balances, tiers and the way to the next tier."""
    return summary_of(Member.objects.get(pk=member.pk), programme().ranking, now=now)


def summary_of(member: Member, ranking: Ranking, *, now=None, figures=None) -> dict:
    """points_summary of a member row just read (its caches as they are in it), or of
    its `figures` (Balances) when the caller has read them already."""
    available, pending = figures or balances(member, now=now)
    next_tier = ranking.next_above(member.qualified_tier_id)
    return {
        "available": available,
        "pending": pending,
        "lifetime": member.lifetime_points,
        "qualified_tier": ranking.by_pk[member.qualified_tier_id],
        "effective_tier": ranking.by_pk[member.effective_tier_id],
        "next_tier": next_tier,
        "points_to_next_tier": next_tier.threshold - member.lifetime_points if next_tier else None,
    }


def member_as_of(member: Member, at) -> dict:
    """points_summary as it stood at `at` (DESIGN.md, "Member 360"), rebuilt from the
    ledger and the tier history, with the tiers' thresholds of today. Entries count
    from when they happened (`issued_at`: a purchase imported late counts from its
    date), pending and available as at `at`. The effective tier follows the last change
    recorded among those dated by then (the top row of the page's tier history): the
    qualified tier, lowered by as many tiers as that change left the member below the
    tier they qualified for (degradation, D2), or at least the tier it granted (a status
    match, G5). Two queries."""
    ranking = programme().ranking
    sums = LedgerEntry.objects.filter(member=member, issued_at__lte=at).aggregate(
        balance=Sum("points", filter=Q(redeemable=True)),
        pending=Sum("points", filter=Q(redeemable=True, accrue_at__gt=at)),
        lifetime=Sum("points", filter=Q(counts_toward_tier=True)),
    )
    available, pending = Balances.of_balance(sums["balance"] or 0, sums["pending"])
    lifetime = sums["lifetime"] or 0
    qualified = ranking.qualified_for(lifetime)
    effective = qualified
    last = (
        TierChange.objects.filter(member=member, changed_at__lte=at)
        .order_by("-pk")
        .values_list("to_tier", "qualified_tier")
        .first()
    )
    if last:
        to, qualified_then = last
        if not ranking.higher(to, qualified_then):
            effective = ranking.lower(qualified.pk, ranking.rank[qualified_then] - ranking.rank[to])
        elif ranking.higher(to, qualified.pk):  # granted (G5): at least that tier
            effective = ranking.by_pk[to]
    next_tier = ranking.next_above(qualified.pk)
    return {
        "available": available,
        "pending": pending,
        "lifetime": lifetime,
        "qualified_tier": qualified,
        "effective_tier": effective,
        "next_tier": next_tier,
        "points_to_next_tier": next_tier.threshold - lifetime if next_tier else None,
    }


def _ledger_sum(condition: Q):
    entries = (
        LedgerEntry.objects.filter(condition, member=OuterRef("pk"))
        .order_by()
        .values("member")
        .annotate(total=Sum("points"))
        .values("total")
    )
    return Coalesce(Subquery(entries), Value(0))


def members_with_ledger_totals():
    """Members annotated with the balance and lifetime points the ledger gives (P7)."""
    return Member.objects.annotate(
        ledger_balance=_ledger_sum(Q(redeemable=True)),
        ledger_lifetime=_ledger_sum(Q(counts_toward_tier=True)),
    )


def cache_mismatches():
    """Members whose cached balance or lifetime points differ from the ledger."""
    return (
        members_with_ledger_totals()
        .exclude(points_balance=F("ledger_balance"), lifetime_points=F("ledger_lifetime"))
        .order_by("pk")
    )


def tier_news(entry: LedgerEntry) -> str:
    """What an entry just posted did to its member's tier, for the staff user who made
    it ("Now Silver, with a tier-up bonus of 100 points"), so that the balance they are
    told next adds up; empty when the tier stayed."""
    change = (
        TierChange.objects.filter(member_id=entry.member_id, changed_at=entry.issued_at)
        .select_related("to_tier", "qualified_tier")
        .order_by("-pk")
        .first()
    )
    if change is None:
        return ""
    bonus = LedgerEntry.objects.filter(
        member_id=entry.member_id, kind=LedgerEntry.Kind.BONUS, issued_at=entry.issued_at
    ).aggregate(points=Sum("points"))["points"]
    with_bonus = f", with a tier-up bonus of {bonus:,} points" if bonus else ""
    if change.from_tier_id == change.to_tier_id:  # held above it (a status match)
        return f"Now qualifies for {change.qualified_tier.name}{with_bonus}"
    return f"Now {change.to_tier.name}{with_bonus}"
