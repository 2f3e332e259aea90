"""Purchases per second through points.services.record_purchase on PostgreSQL.

    DATABASE_URL=postgres://... python bench/purchases.py \
        [--members 100000] [--purchases 6000] [--workers 2]

Works in a scratch database (see synthetic.py) holding --members members spread over
the seed tiers, with the seed's double-points campaign running. Records --purchases
purchases of random members, first in this process, then shared by --workers
processes recording at once, as several tills or web workers do. Prints purchases per
second and SQL statements per purchase for each.
"""

import random
import time
from datetime import timedelta
from decimal import Decimal

from synthetic import copy_members, in_parallel, ready, start

WARM_UP = 20  # purchases per process before the clock starts: statements prepared


def record(args) -> tuple[int, int]:
    """Record `count` purchases in this process; returns (purchases, statements)."""
    worker, count, members, run = args
    from django.db import connection
    from django.utils import timezone

    from members.models import Member
    from points.services import record_purchase

    connection.close()  # a forked worker opens its own connection
    rng = random.Random(worker)
    now = timezone.now()
    statements = 0

    def purchase(i):
        record_purchase(
            member=Member(pk=rng.randint(1, members)),
            amount=Decimal(rng.randint(500, 20000)) / 100,
            occurred_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
            external_id=f"BP-{run}-{worker}-{i}",
            channel="pos",
        )

    def counted(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    for i in range(WARM_UP):
        purchase(f"warm-{i}")
    ready()
    with connection.execute_wrapper(counted):
        for i in range(count):
            purchase(i)
    return count, statements


def timed_run(label: str, workers: int, purchases: int, members: int) -> None:
    share = purchases // workers
    jobs = [(w, share, members, f"{label}{time.time_ns()}") for w in range(workers)]
    results, elapsed = in_parallel(record, jobs)
    done = sum(r[0] for r in results)
    statements = sum(r[1] for r in results)
    print(
        f"{workers} process(es): {done:,} purchases in {elapsed:.2f} s, "
        f"{done / elapsed:,.0f} purchases/s, {statements / done:.2f} statements/purchase"
    )


def main():
    args, bands = start(__doc__, "purchases", purchases=6000, workers=2)

    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    rng = random.Random(2)
    rows = []
    for pk in range(1, args.members + 1):
        tier, threshold = bands[rng.choices(range(4), weights=(50, 30, 15, 5))[0]]
        lifetime = threshold + rng.randint(0, 900)
        joined = now - timedelta(days=rng.randint(30, 900))
        rows.append((pk, joined, tier, lifetime, lifetime, joined))
    if not args.reuse:
        copy_members(rows)
    connection.close()

    print(f"PostgreSQL, {args.members:,} members, each purchase one transaction")
    timed_run("one", 1, args.purchases, args.members)
    if args.workers > 1:
        timed_run("many", args.workers, args.purchases, args.members)


if __name__ == "__main__":
    main()
