"""Merging duplicate accounts (Member 360) on a large programme, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/merge.py [--members 100000] [--entries 10]
                                                      [--pairs 5]

Works in a scratch database (see synthetic.py). Loads N members with `--entries` ledger
entries each, and `--pairs` pairs of members with 5,000 entries each: a year of
purchases (those of the last 30 days still pending), redemptions and bonuses. Then, for
each pair, reads the merge's confirmation (merge_preview) and merges it
(members.services.merge_members), and prints the median and slowest time of each; at
the end, checks that the merged members' caches and tiers equal their ledger.
Target: merging two members with 5,000 entries each under one second.
"""

import statistics
import time
from datetime import timedelta

from synthetic import LEDGER_COLUMNS, copy_members, copy_rows, reset_sequence, start, timed

HEAVY_ENTRIES = 5_000
PENDING_DAYS = 30


def main():
    args, bands = start(__doc__, "merge", entries=10, pairs=5)

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from members.models import Member
    from members.services import merge_members
    from points.models import PointDefinition
    from points.selectors import cache_mismatches
    from points.services import merge_preview
    from tiers.selectors import Ranking, misqualified_by_tier

    purchase = PointDefinition.objects.get(handle="purchase-points").pk
    PointDefinition.objects.filter(pk=purchase).update(accrue_delay_days=PENDING_DAYS)
    now = timezone.now()
    heavy_first = args.members + 1
    heavy = range(heavy_first, heavy_first + 2 * args.pairs)

    def entries_of(pk):
        """(kind, points, counts toward the tier, redeemable, issued_at, accrue_at)."""
        count = HEAVY_ENTRIES if pk in heavy else args.entries
        for i in range(count):
            at = now - timedelta(hours=(count - i) * 365 * 24 // count)
            if i % 10 == 9:  # a redemption, spendable points only
                yield "redemption", -40, False, True, at, at
            elif i % 25 == 24:
                yield "bonus", 50, False, True, at, at
            else:
                points = 20 + (pk * 7919 + i * 104729) % 381
                yield "earn", points, True, True, at, at + timedelta(days=PENDING_DAYS)

    def tier_for(lifetime):
        return [tier for tier, threshold in bands if threshold <= lifetime][-1]

    def members():
        for pk in range(1, heavy_first + 2 * args.pairs):
            rows = list(entries_of(pk))
            balance = sum(points for _, points, _, redeemable, *_ in rows if redeemable)
            lifetime = sum(points for _, points, counts, *_ in rows if counts)
            tier = tier_for(lifetime)
            last = now - timedelta(days=pk % 60)
            yield pk, now - timedelta(days=400), tier, balance, lifetime, last

    def entries():
        for pk in range(1, heavy_first + 2 * args.pairs):
            for kind, points, counts, redeemable, issued, accrue in entries_of(pk):
                definition = purchase if kind == "earn" else None
                yield pk, definition, kind, points, counts, redeemable, issued, accrue, kind, issued

    total = args.members * args.entries + 2 * args.pairs * HEAVY_ENTRIES
    if args.reuse:
        get_user_model().objects.filter(username="bench").delete()
    else:
        with timed(f"load {args.members + 2 * args.pairs:,} members"):
            copy_members(members())  # codes S-00000001..., e-mails s1@example.com...
        with timed(f"load {total:,} ledger entries"):
            copy_rows("points_ledgerentry", LEDGER_COLUMNS, entries())
            reset_sequence("points_ledgerentry")
    staff = get_user_model().objects.create_user("bench", is_staff=True)

    previews, merges = [], []
    for pair in range(args.pairs):
        survivor = Member.objects.get(pk=heavy_first + 2 * pair)
        duplicate = Member.objects.get(pk=heavy_first + 2 * pair + 1)
        started = time.perf_counter()
        merge_preview(survivor=survivor, duplicate=duplicate)
        previews.append(time.perf_counter() - started)
        started = time.perf_counter()
        merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="bench")
        merges.append(time.perf_counter() - started)

    print(
        f"members {args.members + 2 * args.pairs:,}, ledger entries {total:,}; "
        f"{args.pairs} pairs of members with {HEAVY_ENTRIES:,} entries each"
    )
    print(f"{'':<28} {'median':>8} {'slowest':>8}")
    for label, times in [("confirmation (preview)", previews), ("merge", merges)]:
        print(f"{label:<28} {1000 * statistics.median(times):7.0f} ms {1000 * max(times):7.0f} ms")
    wrong = cache_mismatches().filter(pk__in=list(heavy)).count()
    wrong += sum(
        band.filter(pk__in=list(heavy)).count() for _, band in misqualified_by_tier(Ranking())
    )
    merged = Member.objects.filter(pk__in=list(heavy), merged_into__isnull=False).count()
    print(f"merged {merged} members; caches or tiers unlike the ledger: {wrong}")
    assert wrong == 0 and merged == args.pairs


if __name__ == "__main__":
    main()
