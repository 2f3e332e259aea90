"""The CSV import on PostgreSQL, against django-import-export's row-by-row import.

    DATABASE_URL=postgres://... python bench/import.py [--rows 100000] [--members 20000]

Works in a scratch database (see synthetic.py). Writes a CSV of N purchases and returns
(about one in twenty rows returns part of an earlier purchase) over M members, runs
`manage.py import_transactions` on it in a child process (time, rows per second, peak
memory: run --rows 1000000 to see it does not grow with the file), then imports the
first --compare-rows rows of the same file with django-import-export's default
row-by-row path into a plain table, and prints the ratio of the two speeds. The members
have birth dates, so the seed programme's birthday campaign applies to a twelfth of the
purchases.
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

COLUMNS = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id"
RETURNABLE = 20_000


def write_csv(path: Path, rows: int, members: int, now) -> None:
    rng = random.Random(11)
    purchases = []
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS.split(","))
        for i in range(rows):
            at = (now - timedelta(days=60) + timedelta(seconds=i * 5_000_000 // rows)).replace(
                microsecond=0
            )
            if purchases and rng.random() < 0.05:
                original, member, amount = purchases.pop(rng.randrange(len(purchases)))
                part = min(amount, rng.randint(100, 2000) / 100)
                out.writerow(
                    [f"R-{i}", member, "return", f"{part:.2f}", at.isoformat(), "pos", "", original]
                )
            else:
                member = f"S-{rng.randint(1, members):08d}"
                amount = rng.randint(500, 30000) / 100
                # Returns name one of the last RETURNABLE purchases: this process stays
                # small, so the import's peak memory (measured on the child, whose
                # count starts from this process's size at the fork) is its own.
                if len(purchases) < RETURNABLE:
                    purchases.append((f"P-{i}", member, amount))
                else:
                    purchases[rng.randrange(RETURNABLE)] = (f"P-{i}", member, amount)
                out.writerow(
                    [
                        f"P-{i}",
                        member,
                        "purchase",
                        f"{amount:.2f}",
                        at.isoformat(),
                        "pos",
                        "S-1",
                        "",
                    ]
                )


def row_by_row(path: Path, count: int) -> float:
    """django-import-export's default path: one save per row into a plain table."""
    import tablib
    from django.db import connection, models
    from import_export import resources

    class PlainRow(models.Model):  # noqa: DJ008 - a benchmark table
        external_id = models.CharField(max_length=100)
        member = models.CharField(max_length=64)
        kind = models.CharField(max_length=10)
        amount = models.DecimalField(max_digits=12, decimal_places=2)
        occurred_at = models.CharField(max_length=40)
        channel = models.CharField(max_length=10)
        store = models.CharField(max_length=50, blank=True)
        original_external_id = models.CharField(max_length=100, blank=True)

        class Meta:
            app_label = "points"
            db_table = "bench_plain_row"

    class PlainRowResource(resources.ModelResource):
        class Meta:
            model = PlainRow
            fields = COLUMNS.split(",")
            import_id_fields = ["external_id"]

    with connection.schema_editor() as editor:
        editor.create_model(PlainRow)
    with path.open() as handle:
        lines = [next(handle) for _ in range(count + 1)]
    dataset = tablib.Dataset().load("".join(lines), format="csv")
    started = time.perf_counter()
    result = PlainRowResource().import_data(dataset, dry_run=False, raise_errors=True)
    elapsed = time.perf_counter() - started
    assert not result.has_errors() and PlainRow.objects.count() == count
    return count / elapsed


def running_campaigns(now) -> list[str]:
    """The campaigns whose window meets the file's rows (write_csv: 5,000,000 seconds
    from 60 days ago)."""
    from points.models import Campaign

    first = now - timedelta(days=60)
    return list(
        Campaign.objects.filter(
            is_active=True, starts_at__lt=first + timedelta(seconds=5_000_000), ends_at__gt=first
        ).values_list("name", flat=True)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--compare-rows", type=int, default=5_000)
    args = parser.parse_args()
    setup_scratch_database("import")

    from django.db import connection
    from django.utils import timezone

    from loyalty_site.demo import load_programme

    tiers = load_programme()
    now = timezone.now()
    joined = now - timedelta(days=400)
    bronze = tiers["bronze"].pk
    copy_members((pk, joined, bronze, 0, 0, None) for pk in range(1, args.members + 1))
    # Birth dates spread over the year: the seed programme's birthday campaign (x2 in the
    # member's birthday month, running all year) reaches a twelfth of the purchases.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE members_member SET birth_date = make_date(1980, CAST(1 + id % 12 AS int), 1)"
        )
    print(f"campaigns running  {', '.join(running_campaigns(now)) or 'none'}")
    connection.close()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "transactions.csv"
        write_csv(path, args.rows, args.members, now)
        size = path.stat().st_size / 1024 / 1024
        print(f"file               {args.rows:,} rows, {size:.1f} MB, {args.members:,} members")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "manage.py", "import_transactions", str(path)],
            cwd=ROOT,
            env=os.environ,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"command            {done.stdout.strip().splitlines()[-1]}  ({done.returncode=})")
        if done.returncode:
            print(done.stderr[-2000:])
            sys.exit(1)
        bulk = args.rows / elapsed
        print(f"bulk import        {elapsed:.1f} s, {bulk:,.0f} rows/s")
        # The command streams the file: its peak stays flat from 100,000 to 1,000,000 rows.
        print(f"peak memory        {peak:,.0f} MB at {args.rows:,} rows (flat as files grow)")
        compared = min(args.compare_rows, args.rows)
        slow = row_by_row(path, compared)
        print(f"row by row         {slow:,.0f} rows/s (django-import-export, {compared:,} rows)")
        print(f"ratio              {bulk / slow:.1f}x")


if __name__ == "__main__":
    main()
