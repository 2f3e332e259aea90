"""Vouchers (W5) on a large programme, on PostgreSQL.

    DATABASE_URL=postgres://... python bench/vouchers.py [--members 100000] \
        [--redemptions 1000000] [--uses 2000]

Works in a scratch database (see synthetic.py). Loads N members and --redemptions
redemptions (each with its ledger entry; a third used, a tenth cancelled, a fifth
expired), then measures, in process and on one connection:
- a till checking a code (rewards.selectors.voucher) and using one (use_voucher),
  --uses times each: per second, p50 and p99;
- the CX Manager's redemption list, as an agent opens it: unfiltered, filtered by each
  voucher status, searched by a code as read out, and by a customer code (server time,
  median and slowest of 5 after a warm-up, and the queries).
Targets: a check or a use under 5 ms at p99; every list page under 150 ms at 1,000,000
redemptions.
"""

import time
from datetime import timedelta

from synthetic import (
    LEDGER_COLUMNS,
    REDEMPTION_COLUMNS,
    copy_members,
    copy_rows,
    reset_sequence,
    start,
    time_pages,
    timed,
)

REPEATS = 5


def main():
    args, bands = start(__doc__, "vouchers", redemptions=1_000_000, uses=2_000)

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from points.models import PointDefinition
    from rewards.codes import new_code, shown
    from rewards.models import Redemption, Reward
    from rewards.selectors import voucher
    from rewards.services import use_voucher

    now = timezone.now()
    today = timezone.localdate(now)
    reward, _ = Reward.objects.get_or_create(
        name="5 euro voucher", defaults=dict(points_cost=500, voucher_value=5)
    )
    definition = PointDefinition.objects.get(handle="purchase-points").pk
    members, total = args.members, args.redemptions
    codes = []

    def redemption_rows():
        # redemption n: member n % members, redeemed n minutes before now; every third
        # used, every tenth cancelled (if not used), those older than 90 days expired
        for n in range(1, total + 1):
            at = now - timedelta(minutes=n)
            used = n % 3 == 0
            cancelled = not used and n % 10 == 0
            code = new_code()
            if n % (total // 100 or 1) == 0:
                codes.append((code, used, cancelled))
            yield (
                n,
                (n % members) + 1,
                reward.pk,
                500,
                "cancelled" if cancelled else "redeemed",
                at,
                n,  # its ledger entry (loaded with the same ids)
                code,
                timezone.localdate(at) + timedelta(days=90),
                5,
                at + timedelta(days=1) if used else None,
                f"BENCH-USE-{n}" if used else None,
                "pos" if used else "",
                "STORE-01" if used else "",
                at + timedelta(days=1) if cancelled else None,
                reward.name,
                reward.stock is not None,
            )

    if not args.reuse:
        with timed(f"load {members:,} members"):
            copy_members(
                (pk, now - timedelta(days=400), bands[0][0], 0, 0, None)
                for pk in range(1, members + 1)
            )
        with timed(f"load {total:,} redemption entries"):
            copy_rows(
                "points_ledgerentry",
                ["id", *LEDGER_COLUMNS],
                (
                    (n, (n % members) + 1, definition, "redemption", -500, False, True)
                    + (now, now, "Redeemed 5 euro voucher", now)
                    for n in range(1, total + 1)
                ),
            )
            reset_sequence("points_ledgerentry")
        with timed(f"load {total:,} redemptions"):
            copy_rows(
                "rewards_redemption",
                REDEMPTION_COLUMNS,
                redemption_rows(),
            )
            reset_sequence("rewards_redemption")
    else:
        step = max(total // 100, 1)
        codes = [
            (r.code, r.used_at is not None, r.status == "cancelled")
            for r in Redemption.objects.filter(pk__in=range(step, total + 1, step))
        ]

    print(f"members {members:,}, redemptions {Redemption.objects.count():,}")
    print(f"{'operation':<34} {'per s':>8} {'p50':>8} {'p99':>8}")

    def measure(label, calls):
        times = []
        for call in calls:
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        times.sort()
        p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
        rate = len(times) / sum(times)
        print(f"{label:<34} {rate:8.0f} {1000 * p50:6.2f}ms {1000 * p99:6.2f}ms")

    typed = [shown(code).lower() for code, _, _ in codes]  # as a till operator types it
    typed = [typed[i % len(typed)] for i in range(args.uses)]
    measure("check a code (found)", (lambda c=code: voucher(c) for code in typed))
    measure("check a code (unknown)", (lambda: voucher(new_code()) for _ in range(args.uses)))
    fresh = [
        r.code
        for r in Redemption.objects.filter(Redemption.voucher_status_q("valid", today)).order_by(
            "?"
        )[: args.uses]
    ]
    run = new_code()[:6]  # a use's id is unique: another for each run (--reuse)
    measure(
        "use a valid voucher",
        (
            lambda c=code, i=i: use_voucher(code=c, external_id=f"B-{run}-{i}", store="STORE-02")
            for i, code in enumerate(fresh)
        ),
    )

    def refused(code):
        try:
            use_voucher(code=code, external_id=f"B-{run}-AGAIN")
        except Exception:  # noqa: BLE001 - refused, as measured
            pass

    measure("use it again (refused)", (lambda c=code: refused(c) for code in fresh))

    get_user_model().objects.filter(username="bench").delete()  # a run before (--reuse)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    a_code = shown(fresh[0]).lower()
    pages = [
        ("redemption list", "/admin/rewards/redemption/"),
        *(
            (f"  filter: {status}", f"/admin/rewards/redemption/?voucher={status}")
            for status in ("valid", "used", "expired", "cancelled")
        ),
        ("  search: a voucher code", f"/admin/rewards/redemption/?q={a_code}"),
        ("  search: a customer code", f"/admin/rewards/redemption/?q=S-{members // 2:08d}"),
    ]
    print()
    time_pages(client, pages, width=34, repeats=REPEATS)


if __name__ == "__main__":
    main()
