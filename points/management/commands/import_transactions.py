from core.words import counted
from points.management.imports import ImportCommand
from points.resources import read_transactions
from points.services import ImportReport, import_transactions


class Command(ImportCommand):
    help = (
        "Import purchases and returns from a CSV file (see README), all or nothing. "
        "Prints every bad row, then new=N skipped=N errors=N, where errors=N counts rows "
        "with errors, not messages (a row with two wrong cells is one)."
    )
    report_class = ImportReport

    def read(self, stream):
        return read_transactions(stream)

    def run(self, rows, *, errors, dry_run):
        return import_transactions(rows, errors=errors, dry_run=dry_run)

    def described(self, report, *, dry_run: bool) -> str:
        return (
            f"{counted(report.rows, 'row')}: {report.points_moved(dry_run=dry_run)}, "
            f"{counted(report.tier_changes, 'member')} changed tier"
        )
