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
    the effective tier a rules change gives them (`target`, T3), as
    tiers.services.qualification._follow_qualified gives it to one member: the new
    tier, the levels lost to inactivity kept (D2; a purchase gives them back, D3),
    lowered further where their inactivity reaches a step of the new tier, as the next
    run would; a status match holds them at least at its tier (G5). By tier ids, one
    case per degraded pair of tiers: a plain scan."""
    rank = ranking.rank

    def lowered(start: Tier):
        return inactivity_tier(policy, ranking, tier, now, start=start)

    above = [t.pk for t in ranking.tiers if t.threshold > tier.threshold]
    cases = [When(granted_tier__in=above, then=F("granted_tier"))]
    for qualified in ranking.tiers:
        if qualified.pk is None:  # a tier a preview adds: nobody qualifies for it yet
            continue
        for effective in ranking.tiers[: rank[qualified.pk]]:  # degraded: levels lost
            pair = Q(qualified_tier=qualified.pk, effective_tier=effective.pk)
            start = ranking.lower(tier.pk, rank[qualified.pk] - rank[effective.pk])
            for granted in ranking.tiers[rank[start.pk] + 1 : rank[tier.pk] + 1]:
                cases.append(When(pair & Q(granted_tier=granted.pk), then=lowered(granted)))
            cases.append(When(pair, then=lowered(start)))
    return band.annotate(inactive_since=inactive_since()).annotate(
        target=Case(*cases, default=lowered(tier), output_field=BigIntegerField())
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
