import math
from datetime import timedelta

from django.db.models import BigIntegerField, Case, Q, Value, When
from django.db.models.functions import Coalesce

from members.models import Member
from tiers.models import Tier


class Ranking:
    """The tiers in threshold order, loaded once, with rank look-ups (T1)."""

    def __init__(self, tiers=None):
        self.tiers = list(tiers if tiers is not None else Tier.objects.order_by("threshold"))
        self.rank = {tier.pk: i for i, tier in enumerate(self.tiers)}
        self.by_pk = {tier.pk: tier for tier in self.tiers}

    @property
    def entry(self) -> Tier:
        return self.tiers[0]

    def qualified_for(self, lifetime_points: int) -> Tier:
        """The highest tier whose threshold is at or below the lifetime points."""
        found = self.tiers[0]
        for tier in self.tiers:
            if tier.threshold <= lifetime_points:
                found = tier
        return found

    def next_above(self, tier_id: int) -> Tier | None:
        i = self.rank[tier_id] + 1
        return self.tiers[i] if i < len(self.tiers) else None

    def lower(self, tier_id: int, levels: int) -> Tier:
        """The tier `levels` ranks below, never below the lowest (D2)."""
        return self.tiers[max(0, self.rank[tier_id] - levels)]

    def higher(self, a: int, b: int) -> bool:
        """Whether tier `a` ranks above tier `b`."""
        return self.rank[a] > self.rank[b]

    def bands(self):
        """Each tier with its band of lifetime points [low, high); None is open-ended.
        The entry tier's band has no lower end, so no member falls outside all bands."""
        for i, tier in enumerate(self.tiers):
            low = tier.threshold if i else None
            high = self.tiers[i + 1].threshold if i + 1 < len(self.tiers) else None
            yield tier, low, high


def inactive_since():
    """When the member's inactivity started: the last purchase, or joining (D2)."""
    return Coalesce("last_purchase_at", "joined_at")


def members_to_degrade(policy, ranking: Ranking, now):
    """D2 as one queryset: the members whose effective tier is above where their
    inactivity puts them, annotated with that `target` tier id.

    A member qualified for tier rank q, inactive for k full periods, belongs at rank
    max(0, q - k x levels_per_step). The CASE lists, for each qualified tier, the
    targets lowest first, so the first inactivity bound a member passes is the lowest
    tier reached. The job only ever lowers a tier: restoring is a purchase's job (D3).
    Conditions name tier ids rather than joining the tier table, so that the update
    is a plain scan of the member table."""
    if not policy.enabled:
        return Member.objects.none()
    period = timedelta(days=policy.inactivity_days)
    targets, above_target = [], Q(pk__in=[])
    for q, qualified in enumerate(ranking.tiers):
        for t, tier in enumerate(ranking.tiers[:q]):
            periods = math.ceil((q - t) / policy.levels_per_step)
            reached = Q(qualified_tier=qualified, inactive_since__lte=now - periods * period)
            targets.append(When(reached, then=Value(tier.pk)))
            higher = [above.pk for above in ranking.tiers[t + 1 :]]
            above_target |= reached & Q(effective_tier__in=higher)
    if not targets:
        return Member.objects.none()
    return (
        Member.objects.annotate(inactive_since=inactive_since())
        .filter(above_target)
        .annotate(target=Case(*targets, output_field=BigIntegerField()))
    )


def degradation_preview(policy, ranking: Ranking, now) -> dict:
    """Members the degradation job would move at `now`: {member: target tier}."""
    members = members_to_degrade(policy, ranking, now)
    return {
        member: ranking.by_pk[member.target]
        for member in members.select_related("qualified_tier", "effective_tier").order_by("pk")
    }
