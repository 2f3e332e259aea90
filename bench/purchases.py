"""Purchases per second through points.services.record_purchase.

    python bench/purchases.py [--purchases 5000] [--members 500] [--workers 1]

Runs on the configured database (DATABASE_URL): use a scratch database, it adds
members named B-.... With --workers N, N processes record purchases at once, as
several tills or web workers would. Prints purchases per second and queries per
purchase.
"""

import argparse
import multiprocessing
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from loyalty_site.demo import load_programme  # noqa: E402
from members.models import Member  # noqa: E402
from members.services import enroll_member  # noqa: E402
from points.services import record_purchase  # noqa: E402


def prepare(members: int) -> list[int]:
    call_command("migrate", verbosity=0)
    load_programme()
    ids = []
    for n in range(members):
        code = f"B-{n:07d}"
        member = Member.objects.filter(external_id=code).first()
        ids.append((member or enroll_member(external_id=code, email=f"{code}@example.com")).pk)
    return ids


def record(args) -> tuple[int, int]:
    """Record `count` purchases in this process; returns (purchases, queries)."""
    worker, count, member_ids, run = args
    connection.close()  # a forked worker opens its own connection
    rng = random.Random(worker)
    now = timezone.now()
    members = {pk: Member(pk=pk) for pk in member_ids}
    queries = 0

    def count_query(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_query):
        for i in range(count):
            record_purchase(
                member=members[rng.choice(member_ids)],
                amount=Decimal(rng.randint(500, 20000)) / 100,
                occurred_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
                external_id=f"BP-{run}-{worker}-{i}",
                channel="pos",
            )
    return count, queries


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=5000)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    member_ids = prepare(args.members)
    connection.close()
    run = time.time_ns()
    share = args.purchases // args.workers
    jobs = [(w, share, member_ids, run) for w in range(args.workers)]
    started = time.perf_counter()
    if args.workers == 1:
        results = [record(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = pool.map(record, jobs)
    elapsed = time.perf_counter() - started
    purchases = sum(r[0] for r in results)
    queries = sum(r[1] for r in results)

    print(f"database           {connection.vendor}")
    print(
        f"purchases          {purchases:,} over {args.members:,} members, {args.workers} worker(s)"
    )
    print(f"seconds            {elapsed:.2f}")
    print(f"purchases/second   {purchases / elapsed:,.0f}")
    print(f"queries/purchase   {queries / purchases:.2f} (each purchase is one transaction)")


if __name__ == "__main__":
    main()
