"""Point grants on PostgreSQL: a file of N adjustments, against one adjust_points
call per row.

    DATABASE_URL=postgres://... python bench/grants.py [--rows 100000] [--members 20000]

Works in a scratch database (see synthetic.py). Writes a CSV of N grants over M members
(most of them goodwill by the default definition, one in twenty removing points, one
in twenty tier-counting, enough for some members to reach a new tier and its bonus),
runs `manage.py import_grants` on it in a child process (time, rows per second, peak
memory), runs it again (the same file: everything skipped), then grants the first
--compare-rows rows of the same file one adjust_points call per row, and prints the
ratio of the two speeds.
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
from datetime import timedelta
from pathlib import Path

from synthetic import ROOT, copy_members, setup_scratch_database

COLUMNS = "external_id,member,points,reason,definition"
OPENING_BALANCE = 10_000  # each member's available points before the file
USERNAME = "bench-marketer"


def write_csv(path: Path, rows: int, members: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS.split(","))
        for i in range(rows):
            member = f"S-{rng.randint(1, members):08d}"
            draw = rng.random()
            if draw < 0.05:
                out.writerow([f"G-{i}", member, -rng.randint(1, 100), "Correction", ""])
            elif draw < 0.10:
                points = rng.randint(100, 1500)
                out.writerow([f"G-{i}", member, points, "Missed purchase", "goodwill-tier-points"])
            else:
                out.writerow([f"G-{i}", member, rng.randint(10, 500), "Goodwill", ""])


def command(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "import_grants", str(path), "--by", USERNAME],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode:
        print(done.stderr[-2000:])
        sys.exit(1)
    return elapsed, last


def one_call_per_row(path: Path, count: int) -> float:
    """adjust_points once per row: a lock, a balance read and a write each."""
    from django.contrib.auth import get_user_model

    from members.models import Member
    from points.models import PointDefinition
    from points.services import adjust_points

    by = get_user_model().objects.get(username=USERNAME)
    definitions = {d.handle: d for d in PointDefinition.objects.all()}
    with path.open() as handle:
        rows = list(csv.DictReader(handle))[:count]
    members = Member.objects.in_bulk([row["member"] for row in rows], field_name="external_id")
    started = time.perf_counter()
    for row in rows:
        adjust_points(
            member=members[row["member"]],
            points=int(row["points"]),
            reason=row["reason"],
            by=by,
            definition=definitions.get(row["definition"]),
        )
    return count / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--compare-rows", type=int, default=2_000)
    args = parser.parse_args()
    setup_scratch_database("grants")

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from loyalty_site.demo import load_programme

    tiers = load_programme()
    joined = timezone.now() - timedelta(days=400)
    bronze = tiers["bronze"].pk
    copy_members(
        (pk, joined, bronze, OPENING_BALANCE, 0, None) for pk in range(1, args.members + 1)
    )
    user = get_user_model().objects.create_user(USERNAME, is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    connection.close()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grants.csv"
        write_csv(path, args.rows, args.members)
        size = path.stat().st_size / 1024 / 1024
        print(f"file               {args.rows:,} rows, {size:.1f} MB, {args.members:,} members")
        elapsed, last = command(path)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"command            {last}")
        bulk = args.rows / elapsed
        print(f"bulk grants        {elapsed:.1f} s, {bulk:,.0f} rows/s")
        print(f"peak memory        {peak:,.0f} MB at {args.rows:,} rows")
        again, last = command(path)
        print(f"same file again    {again:.1f} s ({last})")
        compared = min(args.compare_rows, args.rows)
        slow = one_call_per_row(path, compared)
        print(f"one call per row   {slow:,.0f} rows/s (adjust_points, {compared:,} rows)")
        print(f"ratio              {bulk / slow:.1f}x")


if __name__ == "__main__":
    main()
