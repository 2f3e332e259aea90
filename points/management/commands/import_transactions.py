import sys

from django.core.management.base import BaseCommand, CommandError

from points.resources import read_transactions
from points.services import import_transactions


class Command(BaseCommand):
    help = (
        "Import purchases and returns from a CSV file (see README), all or nothing. "
        "Prints every bad row, then new=N skipped=N errors=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and compute everything, write nothing"
        )

    def handle(self, *, file, dry_run, **options):
        try:
            stream = open(file, "rb")  # noqa: SIM115 - read while the import runs
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        with stream:
            rows, errors = read_transactions(stream)
            report = import_transactions(rows, errors=errors, dry_run=dry_run)
        for error in report.errors:
            self.stderr.write(str(error))
        if not report.errors:
            verb = "would award" if dry_run else "awarded"
            self.stdout.write(
                f"{report.rows:,} rows: {verb} {report.points:,} points, "
                f"{report.tier_changes:,} members changed tier"
                + (" (dry run: nothing written)" if dry_run else "")
            )
        self.stdout.write(report.summary())
        if report.errors:
            sys.exit(1)
