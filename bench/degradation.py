"""One tier-degradation run over N members on PostgreSQL.

    DATABASE_URL=postgres://... python bench/degradation.py [--members 100000]

Works in a scratch database (see synthetic.py). Members are spread over the four seed
tiers with last purchases over the past 400 days; degradation is enabled with the
defaults (90 days, one level). Prints the run's time, members per second and the
number of SQL statements.
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
    args, bands = start(__doc__, "degradation")

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
    run("first run (catch-up)", now)
    run("same run again", now)
    run("next day (daily run)", now + timedelta(days=1))


if __name__ == "__main__":
    main()
