from core.words import counted
from points.management.imports import ImportCommand
from points.member_rows import read_members
from points.services import MemberImportReport, import_members


class Command(ImportCommand):
    help = (
        "Import members from a CSV file (see README): enrol new codes, update the contact "
        "details of known ones, write opening balances once. All or nothing. Prints every "
        "bad row, then new=N updated=N skipped=N errors=N, where errors=N counts rows with "
        "errors, not messages (a row with two wrong cells is one)."
    )
    report_class = MemberImportReport

    def read(self, stream):
        return read_members(stream)

    def run(self, rows, *, errors, dry_run):
        return import_members(rows, errors=errors, dry_run=dry_run)

    def described(self, report, *, dry_run: bool) -> str:
        verb = "would write" if dry_run else "wrote"
        return (
            f"{counted(report.rows, 'row')}: {verb} {counted(report.points, 'opening point')} and "
            f"{counted(report.lifetime, 'opening lifetime point')}, "
            f"{'would give' if dry_run else 'gave'} {counted(report.given, 'welcome point')}, "
            f"{counted(report.tier_changes, 'member')} placed above the entry tier"
        )
