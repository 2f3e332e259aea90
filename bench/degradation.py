"""One tier-degradation run over N members on PostgreSQL, and the marketer's preview of
the policy before it (who drops tonight and within 14 days, who a hold keeps).

    DATABASE_URL=postgres://... python bench/degradation.py [--members 100000]

Works in a scratch database (see synthetic.py). Members are spread over the four seed
tiers with last purchases over the past 400 days; degradation is enabled with the
defaults (90 days, one level). Prints the run's time, members per second and the
number of SQL statements, and the preview's time.

    --held N   one member in N frozen until next month and one in N with a status match
               (Gold) whose last day was yesterday, so that the first run ends it
               (default 0: none)
"""

import random
import time
from datetime import timedelta

from synthetic import (
    copy_members,
    counting_queries,
    print_slowest,
    start,
    timed,
)


def main():
    args, bands = start(__doc__, "degradation", held=0)

    from django.utils import timezone

    from tiers.models import DegradationPolicy
    from tiers.services import degrade_inactive_members

    now = timezone.now()
    rng = random.Random(3)

    def rows():
        for pk in range(1, args.members + 1):
            tier, threshold = bands[rng.choices(range(4), weights=(40, 30, 20, 10))[0]]
            last = now - timedelta(days=rng.uniform(0, 400))
            lifetime = threshold + rng.randint(0, 999)
            yield pk, last - timedelta(days=30), tier, lifetime, lifetime, last

    with timed(f"load {args.members:,} members"):
        copy_members(rows())
    DegradationPolicy.objects.update(enabled=True)
    if args.held:
        with timed(f"hold 2 in {args.held:,} members"):
            hold(args.held, now, gold=bands[2][0], platinum=bands[3][0])

    def run(label, when):
        with counting_queries() as statements:
            started = time.perf_counter()
            moved = degrade_inactive_members(now=when)
            elapsed = time.perf_counter() - started
        print(
            f"{label:<26} {elapsed:7.2f} s  {moved:>9,} degraded  "
            f"{args.members / elapsed:>10,.0f} members/s  {len(statements)} statements"
        )
        print_slowest(statements)

    print(f"members {args.members:,}")
    preview(now)
    run("first run (catch-up)", now)
    run("same run again", now)
    run("next day (daily run)", now + timedelta(days=1))


def preview(now) -> None:
    """The policy page's confirmation, as a marketer changing the policy sees it."""
    from tiers.degradation_previews import degradation_impact, degradation_skipped
    from tiers.models import DegradationPolicy
    from tiers.selectors import Ranking

    policy, ranking = DegradationPolicy.current(), Ranking()
    with counting_queries() as statements:
        started = time.perf_counter()
        moves = degradation_impact(policy, ranking, now, days=14)
        skipped, _ = degradation_skipped(policy, ranking, now, limit=20)
        elapsed = time.perf_counter() - started
    tonight, soon = (sum(move[key] for move in moves) for key in ("now", "soon"))
    print(
        f"{'policy preview':<26} {elapsed:7.2f} s  {tonight:>9,} tonight  {soon:>9,} within "
        f"14 days  {skipped:,} held  {len(statements)} statements"
    )
    print_slowest(statements)


def hold(every: int, now, *, gold: int, platinum: int) -> None:
    """Freezes and status matches ending tonight on a share of the members."""
    from django.contrib.auth import get_user_model
    from django.db.models import F

    from members.models import Member
    from tiers.models import StatusGrant

    yesterday = now.date() - timedelta(days=1)
    user = get_user_model().objects.create_user("bench-supervisor", is_staff=True)
    members = Member.objects.annotate(n=F("pk") % every)
    members.filter(n=0).update(frozen_until=now + timedelta(days=30), freeze_reason="Illness")
    matched = members.filter(n=1).exclude(qualified_tier__in=[gold, platinum])
    matched.update(granted_tier=gold, granted_until=yesterday, effective_tier=gold)
    StatusGrant.objects.bulk_create(
        StatusGrant(
            member_id=pk,
            tier_id=gold,
            until=yesterday,
            reason="Competitor card",
            granted_by=user,
            granted_at=now - timedelta(days=90),
        )
        for pk in matched.values_list("pk", flat=True).iterator()
    )


if __name__ == "__main__":
    main()
