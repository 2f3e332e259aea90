"""Purchases per second through points.services.record_purchase.

    python bench/purchases.py [--purchases 5000] [--members 500]

Runs on the configured database (DATABASE_URL); use a scratch database, it adds
members named B-.... Prints purchases per second and queries per purchase.
"""

import argparse
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
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from loyalty_site.demo import load_programme  # noqa: E402
from members.models import Member  # noqa: E402
from members.services import enroll_member  # noqa: E402
from points.services import record_purchase  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=5000)
    parser.add_argument("--members", type=int, default=500)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    load_programme()
    run = int(time.time())
    members = []
    for n in range(args.members):
        code = f"B-{n:07d}"
        member = Member.objects.filter(external_id=code).first()
        members.append(member or enroll_member(external_id=code, email=f"{code}@example.com"))

    rng = random.Random(1)
    now = timezone.now()
    work = [
        dict(
            member=rng.choice(members),
            amount=Decimal(rng.randint(500, 20000)) / 100,
            occurred_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 30)),
            external_id=f"BP-{run}-{i}",
            channel="pos",
        )
        for i in range(args.purchases)
    ]
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        for purchase in work:
            record_purchase(**purchase)
        elapsed = time.perf_counter() - started

    print(f"database           {connection.vendor}")
    print(f"purchases          {args.purchases:,} over {args.members:,} members")
    print(f"seconds            {elapsed:.2f}")
    print(f"purchases/second   {args.purchases / elapsed:,.0f}")
    print(f"queries/purchase   {len(queries) / args.purchases:.2f}")


if __name__ == "__main__":
    main()
