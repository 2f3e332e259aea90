import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import Member
from points.models import Campaign, LedgerEntry, PointDefinition
from tiers.models import ProgrammeVersion
from tiers.selectors import Ranking


@dataclass(frozen=True)
class Programme:
    """The configuration every earning reads: tiers, definitions, campaigns."""

    version: uuid.UUID
    ranking: Ranking
    definitions: dict[str, PointDefinition]
    campaigns: list[Campaign]

    @property
    def purchase_definition(self) -> PointDefinition:
        """The one active definition of kind purchase (P1)."""
        for definition in self.definitions.values():
            if definition.kind == PointDefinition.Kind.PURCHASE and definition.is_active:
                return definition
        raise ValidationError("No active purchase definition: a marketer must activate one.")

    def campaigns_for(self, *, at, tier_id: int, channel: str) -> list[Campaign]:
        return [c for c in self.campaigns if c.applies_to(at=at, tier_id=tier_id, channel=channel)]


_programme: Programme | None = None


def programme(version: uuid.UUID | None = None) -> Programme:
    """The programme, cached per process while its version token is unchanged.

    Pass the token read in the caller's own query to save a round trip.
    """
    global _programme
    version = version or ProgrammeVersion.objects.values_list("token", flat=True).first()
    version = uuid.UUID(str(version)) if version else None  # SQLite gives hex text
    if version is None or _programme is None or _programme.version != version:
        _programme = Programme(
            version=version,
            ranking=Ranking(),
            definitions={d.handle: d for d in PointDefinition.objects.all()},
            campaigns=list(Campaign.objects.filter(is_active=True).prefetch_related("tiers")),
        )
    return _programme


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
