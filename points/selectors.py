from django.db.models import F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import Member
from points.models import Campaign, LedgerEntry, PointDefinition
from tiers.selectors import Ranking


def purchase_definition() -> PointDefinition:
    """The one active definition of kind purchase (P1)."""
    return PointDefinition.objects.get(kind=PointDefinition.Kind.PURCHASE, is_active=True)


def campaigns_running(at) -> list[Campaign]:
    """Campaigns whose window contains `at`; `Campaign.applies_to` reads the limits."""
    return list(
        Campaign.objects.filter(is_active=True, starts_at__lte=at, ends_at__gt=at).prefetch_related(
            "tiers"
        )
    )


def pending_points(member: Member, *, now=None) -> int:
    """Redeemable points issued but not yet accrued (P5)."""
    now = now or timezone.now()
    total = LedgerEntry.objects.filter(member=member, redeemable=True, accrue_at__gt=now).aggregate(
        total=Sum("points")
    )["total"]
    return total or 0


def points_summary(member: Member, *, now=None) -> dict:
    """What a CX agent tells a customer: balances, tiers and the way to the next tier."""
    member = Member.objects.get(pk=member.pk)
    ranking = Ranking()
    pending = pending_points(member, now=now)
    next_tier = ranking.next_above(member.qualified_tier_id)
    return {
        "available": member.points_balance - pending,
        "pending": pending,
        "lifetime": member.lifetime_points,
        "qualified_tier": ranking.by_pk[member.qualified_tier_id],
        "effective_tier": ranking.by_pk[member.effective_tier_id],
        "next_tier": next_tier,
        "points_to_next_tier": next_tier.threshold - member.lifetime_points if next_tier else None,
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
