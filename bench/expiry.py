"""One expiry cutoff over N members on PostgreSQL.

    DATABASE_URL=postgres://... python bench/expiry.py [--members 100000]

Works in a scratch database (see synthetic.py). Members are spread over the four seed
tiers (Gold and Platinum are exempt), each with two or three ledger entries in the
month before the cutoff, one of them still pending at the cutoff. Monthly expiry is on;
the run processes the cutoff of the last day of the previous month. Prints the run's
time, members per second, entries written and the number of SQL statements.
"""

import random
import time
from datetime import timedelta

from synthetic import (
    copy_members,
    copy_rows,
    counting_queries,
    print_slowest,
    reset_sequence,
    start,
    timed,
)


def main():
    args, bands = start(__doc__, "expiry")

    from django.utils import timezone

    from points.models import ExpiryPolicy, PointDefinition
    from points.selectors import cutoff_instant
    from points.services import expire_points

    purchase = PointDefinition.objects.get(handle="purchase-points").pk
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    end = cutoff_instant(cutoff)
    rng = random.Random(5)
    members, entries = [], []
    for pk in range(1, args.members + 1):
        tier, threshold = bands[rng.choices(range(4), weights=(50, 30, 15, 5))[0]]
        earned = [threshold + rng.randint(1, 500), rng.randint(1, 300)]
        issued = [
            end - timedelta(days=rng.uniform(20, 30)),
            end - timedelta(days=rng.uniform(1, 5)),
        ]
        accrue = [issued[0], end + timedelta(days=3)]  # the second is pending at the cutoff
        members.append(
            (pk, issued[0] - timedelta(days=1), tier, sum(earned), sum(earned), issued[1])
        )
        for points, at, available in zip(earned, issued, accrue, strict=True):
            entries.append((pk, purchase, "earn", points, True, True, at, available, "", at))

    with timed(f"load {args.members:,} members"):
        copy_members(members)
        copy_rows(
            "points_ledgerentry",
            [
                "member_id",
                "definition_id",
                "kind",
                "points",
                "counts_toward_tier",
                "redeemable",
                "issued_at",
                "accrue_at",
                "reason",
                "created_at",
            ],
            entries,
        )
        reset_sequence("points_ledgerentry")
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": cutoff - timedelta(days=1)}
    )

    print(f"members {args.members:,}, ledger entries {len(entries):,}, cutoff {cutoff}")
    for label in ("expiry run", "same run again"):
        with counting_queries() as statements:
            started = time.perf_counter()
            written = expire_points(now=end + timedelta(hours=1))
            elapsed = time.perf_counter() - started
        print(
            f"{label:<18} {elapsed:7.2f} s  {written:>9,} expiry entries  "
            f"{args.members / elapsed:>10,.0f} members/s  {len(statements)} statements"
        )
        print_slowest(statements)


if __name__ == "__main__":
    main()
