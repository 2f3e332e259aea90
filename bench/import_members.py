"""The members import on PostgreSQL: a programme migrating in.

    DATABASE_URL=postgres://... python bench/import_members.py [--members 100000]

Works in a scratch database (see synthetic.py). Writes a CSV of N members, each with
contact details, a joining date, a birth date and opening balances (points and
lifetime points spread over every tier), runs `manage.py import_members` on it in a
child process (time, rows per second, peak memory: run --members 1000000 to see it
does not grow with the file), then runs it again on the same file, which must skip
every row and change nothing (the tables' counts and sums before and after).
"""

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from synthetic import ROOT, setup_scratch_database

COLUMNS = (
    "external_id,email,first_name,last_name,phone,joined_at,birth_date,"
    "opening_points,opening_lifetime"
)


def write_csv(path: Path, members: int) -> None:
    rng = random.Random(7)
    first = date(2015, 1, 1)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS.split(","))
        for i in range(1, members + 1):
            joined = first + timedelta(days=rng.randrange(3650))
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(20000))
            lifetime = int(rng.paretovariate(1.2) * 600) - 600  # most Bronze, a few Platinum
            out.writerow(
                [
                    f"MIG-{i:08d}",
                    f"member{i}@example.com",
                    "Ann",
                    f"Lee {i % 1000}",
                    f"+34 6{i:08d}",
                    joined.isoformat(),
                    born.isoformat(),
                    rng.randrange(0, 5000) if rng.random() < 0.9 else "",
                    min(lifetime, 50_000) if lifetime > 0 else "",
                ]
            )


def snapshot() -> tuple:
    """Counts and sums of everything the import writes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM members_member),"
            " (SELECT SUM(points_balance) FROM members_member),"
            " (SELECT SUM(lifetime_points) FROM members_member),"
            " (SELECT SUM(hashtext(email || first_name || last_name || phone"
            "  || COALESCE(birth_date::text, '') || qualified_tier_id || best_tier_id))"
            "  FROM members_member),"
            " (SELECT COUNT(*) FROM points_ledgerentry),"
            " (SELECT SUM(points) FROM points_ledgerentry),"
            " (SELECT COUNT(*) FROM members_tierchange),"
            " (SELECT COUNT(*) FROM members_notification)"
        )
        return cursor.fetchone()


def command(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "import_members", str(path)],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        print(done.stderr[-2000:])
        sys.exit(1)
    return elapsed, done.stdout.strip().splitlines()[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    setup_scratch_database("members")

    from django.db import connection

    from loyalty_site.demo import load_programme

    load_programme()
    connection.close()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "members.csv"
        write_csv(path, args.members)
        size = path.stat().st_size / 1024 / 1024
        print(f"file               {args.members:,} members, {size:.1f} MB")
        elapsed, last = command(path)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"command            {last}")
        print(f"import             {elapsed:.1f} s, {args.members / elapsed:,.0f} rows/s")
        print(f"peak memory        {peak:,.0f} MB at {args.members:,} rows (flat as files grow)")
        before = snapshot()
        print(
            f"written            {before[0]:,} members, {before[4]:,} ledger entries, "
            f"{before[6]:,} tier history rows, {before[7]:,} messages"
        )
        connection.close()
        elapsed, last = command(path)
        print(f"same file again    {last}, {elapsed:.1f} s")
        after = snapshot()
        print(f"changed nothing    {after == before}")
        if after != before:
            sys.exit(1)


if __name__ == "__main__":
    main()
