import sys

from django.core.management.base import BaseCommand, CommandError

from points.member_rows import read_members
from points.services import MemberImportReport, import_members


class Command(BaseCommand):
    help = (
        "Import members from a CSV file (see README): enrol new codes, update the contact "
        "details of known ones, write opening balances once. All or nothing. Prints every "
        "bad row, then new=N updated=N skipped=N errors=N."
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
            rows, errors = read_members(stream)
            try:
                report = import_members(rows, errors=errors, dry_run=dry_run)
            except Exception:
                # Not a bad row (those are named) but the import itself failing, e.g. the
                # database gone: nothing was written. The last line still comes.
                failed = "the import stopped on an error of its own: nothing was written"
                self.write_report(MemberImportReport(errors=[*errors, failed]), dry_run=dry_run)
                raise
        self.write_report(report, dry_run=dry_run)
        if report.errors:
            sys.exit(1)

    def write_report(self, report: MemberImportReport, *, dry_run: bool) -> None:
        for error in report.errors:
            self.stderr.write(str(error))
        if not report.errors:
            verb = "would write" if dry_run else "wrote"
            self.stdout.write(
                f"{report.rows:,} rows: {verb} {report.points:,} opening points and "
                f"{report.lifetime:,} opening lifetime points, {report.tier_changes:,} members "
                f"placed above the entry tier" + (" (dry run: nothing written)" if dry_run else "")
            )
        self.stdout.write(report.summary())
