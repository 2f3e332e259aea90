"""One expiry cutoff over N members on PostgreSQL, in this process or shared out to
worker processes.

    DATABASE_URL=postgres://... python bench/expiry.py [--members 100000]
    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... \
        python bench/expiry.py --workers 4 [--chunk 5000]

Works in a scratch database (see synthetic.py). Members are spread over the four seed
tiers (Gold and Platinum are exempt), each with two ledger entries in the month before
the cutoff, one of them still pending at the cutoff, and its tier history; one Silver
member in fifty reached Gold just after the cutoff, before the run (their points at the
cutoff still expire). Monthly expiry is on;
the run processes the cutoff of the last day of the previous month. Prints the run's
time, members per second, entries written and the number of SQL statements: first
undone, then again with a webhook endpoint subscribed to `points.expired` (one outbox
row per expired member), and the difference. With
--workers, the in-process run is undone and the periodic task does the cutoff again
over that many `celery worker` processes, in chunks of --chunk members.
"""

import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from synthetic import (
    HISTORY_COLUMNS,
    LEDGER_COLUMNS,
    copy_members,
    copy_rows,
    counting_queries,
    print_slowest,
    reset_sequence,
    start,
    timed,
    vacuum,
)


def main():
    args, bands = start(__doc__, "expiry", workers=0, chunk=5_000)

    from django.db import transaction
    from django.utils import timezone

    from points.expiry_selectors import cutoff_instant
    from points.models import ExpiryPolicy, PointDefinition
    from points.services import expire_points

    purchase = PointDefinition.objects.get(handle="purchase-points").pk
    today = timezone.localdate()
    cutoff = today.replace(day=1) - timedelta(days=1)
    end = cutoff_instant(cutoff)
    rng = random.Random(5)
    members, entries, history = [], [], []
    (bronze, _), (silver, silver_from), (gold, gold_from) = bands[:3]
    for pk in range(1, args.members + 1):
        tier, threshold = bands[rng.choices(range(4), weights=(50, 30, 15, 5))[0]]
        earned = [threshold + rng.randint(1, 500), rng.randint(1, 300)]
        issued = [
            end - timedelta(days=rng.uniform(20, 30)),
            end - timedelta(days=rng.uniform(1, 5)),
        ]
        accrue = [issued[0], end + timedelta(days=3)]  # the second is pending at the cutoff
        joined = issued[0] - timedelta(days=1)
        history.append((pk, "joined", None, bronze, bronze, joined))
        if tier != bronze:
            history.append((pk, "upgrade", bronze, tier, tier, issued[0]))
        if tier == silver and pk % 50 == 0:  # Gold since just after the cutoff: still expires
            earned.append(gold_from - silver_from)
            issued.append(end + timedelta(minutes=30))
            accrue.append(end + timedelta(days=30))
            history.append((pk, "upgrade", silver, gold, gold, issued[-1]))
            tier = gold
        members.append((pk, joined, tier, sum(earned), sum(earned), issued[-1]))
        for points, at, available in zip(earned, issued, accrue, strict=True):
            entries.append((pk, purchase, "earn", points, True, True, at, available, "", at))

    with timed(f"load {args.members:,} members"):
        copy_members(members)
        copy_rows("points_ledgerentry", LEDGER_COLUMNS, entries)
        reset_sequence("points_ledgerentry")
        copy_rows("members_tierchange", HISTORY_COLUMNS, history)
        reset_sequence("members_tierchange")
    ExpiryPolicy.objects.update_or_create(
        pk=1, defaults={"cycle": "monthly", "starts_on": cutoff - timedelta(days=1)}
    )

    print(
        f"members {args.members:,}, ledger entries {len(entries):,}, "
        f"tier history {len(history):,}, cutoff {cutoff}"
    )

    def report(label, elapsed, written, detail):
        print(
            f"{label:<20} {elapsed:7.2f} s  {written:>9,} expiry entries  "
            f"{args.members / elapsed:>10,.0f} members/s  {detail}"
        )

    def in_process(label):
        with counting_queries() as statements:
            started = time.perf_counter()
            written = expire_points(now=end + timedelta(hours=1))
            elapsed = time.perf_counter() - started
        report(label, elapsed, written, f"{len(statements)} statements")
        print_slowest(statements)
        webhooks = [t for t, sql in statements if "core_webhook" in sql or "core_bulkevent" in sql]
        if webhooks:
            print(f"  of which webhooks: {len(webhooks)} statements, {sum(webhooks):.3f} s")
        return elapsed

    def undone(label, then=None):
        """A run measured, then undone to be done again. Undone, its chunks never
        commit: no commit waits for the disk and no deferred foreign-key check runs,
        so it is quicker than a kept run; compare undone runs with undone runs."""
        with transaction.atomic():
            elapsed = in_process(label)
            if then:
                then()
            transaction.set_rollback(True)
        vacuum("points_ledgerentry")
        vacuum("members_member")
        return elapsed

    if args.workers:
        undone("in-process (undone)")
        on_workers(args, report)
    else:
        # The first run of a fresh table is quicker than any later one: the second and
        # third are alike but for an endpoint subscribed to points.expired.
        undone("first run (undone)")
        without = undone("without webhooks (undone)")
        subscribed = subscribe_endpoint()
        with_webhooks = undone(f"with webhooks ({subscribed}, undone)", then=expand_deliveries)
        print(f"webhooks add {with_webhooks / without - 1:.0%} to the run (goal: at most 25%)")
        in_process("kept, with webhooks")
    in_process("same run again")


def expand_deliveries() -> None:
    """The sender's work before it sends, after the run: one delivery per expired member."""
    from core.events import expand_bulk_events
    from core.models import WebhookDelivery

    started = time.perf_counter()
    expand_bulk_events()
    elapsed = time.perf_counter() - started
    print(
        f"deliveries written   {elapsed:7.2f} s  {WebhookDelivery.objects.count():>9,} (the sender)"
    )


def subscribe_endpoint() -> str:
    from api.webhook_endpoints import save_endpoint
    from core.events import EventType
    from core.models import WebhookEndpoint

    endpoint = WebhookEndpoint(url="http://127.0.0.1:9/hooks", events=[EventType.POINTS_EXPIRED])
    save_endpoint(endpoint)
    return EventType.POINTS_EXPIRED


def on_workers(args, report):
    """The periodic task's path: the beat task shares the cutoff out in chunks of
    --chunk members to --workers worker processes on Redis; timed until it is recorded."""
    from core.models import JobChunk
    from points.models import ExpiryRun
    from points.tasks import expire_points_task
    from tests.workers import redis_url, running_workers, wait_until

    if redis_url() is None:
        sys.exit("--workers needs CELERY_BROKER_URL=redis://...")
    names = [f"bench{i}" for i in range(1, args.workers + 1)]
    with (
        tempfile.TemporaryDirectory() as logs,
        running_workers(names, Path(logs), JOB_CHUNK_SIZE=str(args.chunk)) as (queue, _),
    ):
        started = time.perf_counter()
        expire_points_task.apply_async(queue=queue)
        wait_until(ExpiryRun.objects.exists, seconds=3600)
        elapsed = time.perf_counter() - started
    chunks = JobChunk.objects.count()
    detail = f"{chunks} chunks of {args.chunk:,} members"
    report(f"{args.workers} workers", elapsed, ExpiryRun.objects.get().members, detail)


if __name__ == "__main__":
    main()
