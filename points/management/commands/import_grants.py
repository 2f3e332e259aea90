import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from points.grant_rows import read_grants
from points.services import ImportReport, import_grants


class Command(BaseCommand):
    help = (
        "Grant points from a CSV file (external_id,member,points,reason,definition; see "
        "README), all or nothing, attributed to a staff user. Prints every bad row, then "
        "new=N skipped=N errors=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--by",
            required=True,
            metavar="USERNAME",
            help="the staff user the grants are attributed to",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="check and compute everything, write nothing"
        )

    def handle(self, *, file, by, dry_run, **options):
        user = self.staff_user(by)
        try:
            stream = open(file, "rb")  # noqa: SIM115 - read while the import runs
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        with stream:
            rows, errors = read_grants(stream)
            try:
                report = import_grants(rows, by=user, errors=errors, dry_run=dry_run)
            except Exception:
                # Not a bad row (those are named in the report) but the import itself
                # failing, e.g. the database gone: nothing was written. The last line
                # still comes; the traceback follows on stderr.
                failed = "the import stopped on an error of its own: nothing was written"
                self.write_report(ImportReport(errors=[*errors, failed]), dry_run=dry_run)
                raise
        self.write_report(report, dry_run=dry_run)
        if report.errors:
            sys.exit(1)

    def staff_user(self, username: str):
        """The active staff user allowed to import grants, or a clear error."""
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(
                f"No user {username!r}: give the username of a staff user."
            ) from None
        if not user.is_active:
            raise CommandError(f"{username!r} is not an active user.")
        if not user.is_staff:
            raise CommandError(f"{username!r} is not a staff user: only staff grant points.")
        if not user.has_perm("points.import_grants"):
            raise CommandError(
                f"{username!r} may not import point grants (the permission 'Can import "
                "point grants', which the Marketer group has)."
            )
        return user

    def write_report(self, report: ImportReport, *, dry_run: bool) -> None:
        for error in report.errors:
            self.stderr.write(str(error))
        if not report.errors:
            verb = "would grant" if dry_run else "granted"
            self.stdout.write(
                f"{report.rows:,} rows: {verb} {report.points:+,} points in all, "
                f"{report.tier_changes:,} members changed tier"
                + (" (dry run: nothing written)" if dry_run else "")
            )
        self.stdout.write(report.summary())
