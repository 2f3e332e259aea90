"""T3 as the marketer and the recalculation read it: the effective tier a change of
thresholds gives each member (tiers.services.qualification writes it), and the moves a
threshold not yet saved would make (the tier page's preview)."""

import copy

from django.db.models import BigIntegerField, Case, Count, F, Q, When
from django.utils import timezone

from tiers.models import DegradationPolicy, Tier
from tiers.selectors import Ranking, inactive_since, inactivity_tier, misqualified_by_tier


def with_rules_changed_tier(band, tier: Tier, ranking: Ranking, policy, now):
    """The members of `band`, whom the thresholds qualify for `tier` now, annotated with
    the effective tier a rules change gives them (`target`, T3): they follow the new
    tier, lowered by their inactivity (D2) as the next degradation run would, except
    that a degraded member stays degraded (capped at the new tier) until a purchase
    restores them (D3), and a status match above the new tier holds them at it (G5)."""
    above = [t.pk for t in ranking.tiers if t.threshold > tier.threshold]
    degraded = Q(pk__in=[])  # below the qualified tier, by tier ids: a plain scan
    for qualified in ranking.tiers:
        if qualified.pk is None:  # a tier a preview adds: nobody qualifies for it yet
            continue
        lower = [t.pk for t in ranking.tiers if ranking.higher(qualified.pk, t.pk)]
        degraded |= Q(qualified_tier=qualified.pk, effective_tier__in=lower)
    follows = Q(effective_tier=F("qualified_tier")) | Q(effective_tier__in=above)
    return band.annotate(inactive_since=inactive_since()).annotate(
        target=Case(
            # A status match above the new tier holds the member at it; one at or below
            # it is reached: the member follows the new tier, unless degraded (held at
            # the granted tier, not restored without a purchase).
            When(granted_tier__in=above, then=F("granted_tier")),
            When(
                follows | Q(granted_tier__isnull=False) & ~degraded,
                then=inactivity_tier(policy, ranking, tier, now),
            ),
            default=F("effective_tier"),
            output_field=BigIntegerField(),
        )
    )


def threshold_change_preview(tier: Tier, threshold: int) -> dict:
    """How many members would move up and down if `tier` had `threshold` (T3): the
    marketer sees it before saving. `kept`: of them, those whose effective tier stays
    (the days without a purchase, a status match). One count per tier, whatever the
    number of members."""
    changed = copy.copy(tier)
    changed.threshold = threshold
    tiers = [changed if t.pk == tier.pk else t for t in Ranking().tiers]
    if tier.pk is None:
        tiers.append(changed)
    ranking = Ranking(sorted(tiers, key=lambda t: t.threshold))
    policy, now = DegradationPolicy.current(), timezone.now()
    up = down = kept = 0
    for target, band in misqualified_by_tier(ranking):
        below = [t.pk for t in ranking.tiers if t.threshold < target.threshold]
        counts = with_rules_changed_tier(band, target, ranking, policy, now).aggregate(
            up=Count("pk", filter=Q(qualified_tier__in=below)),
            down=Count("pk", filter=~Q(qualified_tier__in=below)),
            kept=Count("pk", filter=Q(target=F("effective_tier"))),
        )
        up, down, kept = up + counts["up"], down + counts["down"], kept + counts["kept"]
    return {"up": up, "down": down, "kept": kept}
