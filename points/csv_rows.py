"""The CSV contracts' types (DESIGN.md), shared by the parsers (points.resources,
points.grant_rows) and the imports (points.services.importing, points.services.grants):

    external_id,member,kind,amount,occurred_at,channel,store,original_external_id
    external_id,member,points,reason,definition
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

COLUMNS = (
    "external_id",
    "member",
    "kind",
    "amount",
    "occurred_at",
    "channel",
    "store",
    "original_external_id",
)
KINDS = ("purchase", "return")


class ImportRow(NamedTuple):
    """A checked CSV row. Back from the import's staging table it also carries the id
    its external_id was recorded under before this import, if any. A named tuple: a
    million of them are made from a million-row file."""

    line: int
    external_id: str
    member: str
    kind: str
    amount: Decimal
    occurred_at: datetime
    channel: str
    store: str
    original_external_id: str
    recorded_id: int | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A bad row: the file's physical line, the column (or "row", "file") and why."""

    line: int
    column: str
    reason: str
    # The bad row's own id, when it is well formed: a row repeating it is a duplicate.
    external_id: str = field(default="", compare=False, repr=False)
    # An error of the header (points.csv_files.open_csv): no row of the file was read.
    header: bool = field(default=False, compare=False, repr=False)
    # Where the file was read no further (points.csv_files.stop_reading): not read.
    stopped: bool = field(default=False, compare=False, repr=False)
    # The bad row's customer code, when it has one: checked against the members as the
    # good rows' are (posting.unknown_members_of_bad_rows).
    member: str = field(default="", compare=False, repr=False)

    def __str__(self):
        return f"line {self.line}, {self.column}: {self.reason}"


def naming(errors: list[RowError], external_id: str, member: str = "") -> list[RowError]:
    """A bad row's errors, carrying its id and its customer code unless that is what
    is wrong with it."""
    wrong = {error.column for error in errors}
    known = {
        "external_id": "" if "external_id" in wrong else external_id,
        "member": "" if "member" in wrong else member,
    }
    return [replace(error, **known) for error in errors]


def bad_rows(errors) -> int:
    """How many rows are wrong: a row with three wrong cells is one row, not three; a
    wrong header is no row (none was read), nor the line reading stopped at."""
    return len({error.line for error in errors if not (error.header or error.stopped)})


def summed_up(errors) -> int:
    """errors=N on the last line of an import command: the rows with errors, as the
    list of imports counts them (bad_rows). A file that went wrong without a bad row
    (its header is wrong, or the import stopped on an error of its own, which the
    command adds as text) counts 1: never 0 when something is wrong."""
    rows = bad_rows(error for error in errors if isinstance(error, RowError))
    return rows or min(len(errors), 1)


def ids_of_bad_rows(errors) -> list[tuple[int, str]]:
    """(line, external_id) of the bad rows whose id is known: the import finds the rows
    that repeat them (and the bad rows that repeat another) as it finds the good rows'
    duplicates, so that one run lists every bad row."""
    return list({error.line: error.external_id for error in errors if error.external_id}.items())


# Point grants (bulk manual adjustments, P6 per row): read by points.grant_rows,
# applied by points.services.grants.

GRANT_COLUMNS = ("external_id", "member", "points", "reason", "definition")
GRANT_REQUIRED = GRANT_COLUMNS[:4]  # without a definition column, every row is a manual adjustment


class GrantRow(NamedTuple):
    """A checked row of a grants file: `definition` is a handle (the default filled
    in). Back from the staging table it carries the id of the ledger entry its
    external_id was recorded under before, if any."""

    line: int
    external_id: str
    member: str
    points: int
    reason: str
    definition: str
    recorded_id: int | None = None
