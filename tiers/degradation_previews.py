"""D2 as the marketer reads a change of the degradation policy before saving it (the
policy page's confirmation, the preview_degradation command): who drops tonight, who
within days, and who a status match or a freeze keeps; read from the job's own
queryset (tiers.selectors.members_to_degrade), as tiers.threshold_changes does for T3."""

from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.dateformat import format as date_format

from members.models import HELD, Member
from tiers.selectors import (
    Ranking,
    frozen_last_day,
    members_to_degrade,
    steps_due_tonight,
    within_days,
)


def degradation_preview(policy, ranking: Ranking, now) -> dict:
    """Members the degradation job would move at `now`: {member: target tier}."""
    members = members_to_degrade(policy, ranking, now)
    return {
        member: ranking.by_pk[member.target]
        for member in members.select_related("qualified_tier", "effective_tier").order_by("pk")
    }


def degradation_skipped(policy, ranking: Ranking, now, *, limit: int) -> tuple[int, list]:
    """Members whose inactivity would move them at `now` but whom a status match or a
    freeze keeps where they are: (how many, the first `limit` as [(member, why)]). The
    job's own queryset read without the holds, less the job's, among the members a match
    or a freeze holds at all (whom the partial index member_held finds: a scan of every
    member due took 1.3 s at a million)."""
    moved = members_to_degrade(policy, ranking, now)
    skipped = members_to_degrade(policy, ranking, now, holds=False).filter(HELD)
    skipped = skipped.exclude(_among(moved))
    count = skipped.order_by().count()
    rows = skipped.select_related("effective_tier", "granted_tier").order_by("pk")[:limit]
    return count, [(member, held_because(member, now)) for member in rows]


def _among(members) -> Exists:
    """Whether the member is one of `members`, row by row (by its primary key): a NOT IN
    of half a million ids rescans them for every member at a million members."""
    return Exists(members.filter(pk=OuterRef("pk")))


def held_because(member: Member, now) -> str:
    """Why the nightly jobs leave a member alone, as staff read it."""
    if member.frozen_at(now):
        return f"frozen until {frozen_last_day(member):%-d %b %Y}: {member.freeze_reason}"
    if member.granted_tier_id:
        return f"{member.granted_tier.name} by status match"
    if member.frozen_until:
        day = date_format(timezone.localtime(member.frozen_until), "j M Y")
        return f"inactivity counts from the end of a freeze on {day}"
    return ""


def degradation_impact(policy, ranking: Ranking, now, *, days: int) -> list[dict]:
    """What `policy` (saved or only posted) would do, by move: [{"source": effective tier,
    "target": tier, "now": members who drop at tonight's run, "soon": members who do not
    but drop within `days` without a purchase}], highest tiers first. Two grouped
    queries whatever the number of members, read from the job's own queryset."""
    if not policy.enabled or len(ranking.tiers) < 2:
        return []  # no step to take (members_to_degrade gives no `target` then)
    tonight = members_to_degrade(policy, ranking, steps_due_tonight(now))
    soon = members_to_degrade(policy, ranking, within_days(now, days)).exclude(_among(tonight))
    moves = {}
    for key, queryset in [("now", tonight), ("soon", soon)]:
        grouped = queryset.order_by().values_list("effective_tier", "target")
        for source, target, count in grouped.annotate(count=Count("pk")):
            move = moves.setdefault((source, target), {"now": 0, "soon": 0})
            move[key] = count
    rows = [
        {"source": ranking.by_pk[source], "target": ranking.by_pk[target], **counts}
        for (source, target), counts in moves.items()
    ]
    rank = ranking.rank
    return sorted(rows, key=lambda row: (-rank[row["source"].pk], -rank[row["target"].pk]))
