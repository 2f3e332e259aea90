from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from core.words import counted
from points.grant_rows import read_grants
from points.management.imports import ImportCommand
from points.services import ImportReport, import_grants
from points.services.grants import check_granter


class Command(ImportCommand):
    help = (
        "Grant points from a CSV file (external_id,member,points,reason,definition; see "
        "README), all or nothing, attributed to a staff user. Prints every bad row, then "
        "new=N skipped=N errors=N, where errors=N counts rows with errors, not messages (a "
        "row with two wrong cells is one)."
    )

    report_class = ImportReport

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--by",
            required=True,
            metavar="USERNAME",
            help="the staff user the grants are attributed to",
        )

    def handle(self, *, by, **options):
        self.user = self.staff_user(by)  # before the file is read
        super().handle(**options)

    def read(self, stream):
        return read_grants(stream)

    def run(self, rows, *, errors, dry_run):
        return import_grants(rows, by=self.user, errors=errors, dry_run=dry_run)

    def staff_user(self, username: str):
        """The active staff user allowed to import grants, or a clear error."""
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(
                f"No user {username!r}: give the username of a staff user."
            ) from None
        try:
            check_granter(user)
        except ValidationError as refused:
            raise CommandError(" ".join(refused.messages)) from None
        return user

    def described(self, report, *, dry_run: bool) -> str:
        # Given and taken away apart, never netted: a file that takes 400 and gives 200
        # did not "grant -200".
        grant, take, gave = (
            ("would grant", "would take", "would give") if dry_run else ("granted", "took", "gave")
        )
        return (
            f"{counted(report.rows, 'row')}: {grant} {report.earned:,} points and {take} "
            f"{report.taken_back:,} away, tier-up bonuses {gave} {report.given:,}, "
            f"{counted(report.tier_changes, 'member')} changed tier"
        )
