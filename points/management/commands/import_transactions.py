import sys

from django.core.management.base import BaseCommand, CommandError

from points.resources import read_transactions
from points.services import ImportReport, import_transactions


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
            try:
                report = import_transactions(rows, errors=errors, dry_run=dry_run)
            except Exception:
                # Not a bad row (the parser names those, whatever is in them) but the
                # import itself failing, e.g. the database gone: nothing was written.
                # The last line still comes; the traceback follows on stderr.
                failed = "the import stopped on an error of its own: nothing was written"
                self.write_report(ImportReport(errors=[*errors, failed]), dry_run=dry_run)
                raise
        self.write_report(report, dry_run=dry_run)
        if report.errors:
            sys.exit(1)

    def write_report(self, report: ImportReport, *, dry_run: bool) -> None:
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
