"""The statements of the grants import (points.services.grants), apart from its rules:
the file's rows staged in a temporary table as they are read, so that the database
finds the duplicates, the rows recorded before and the members to lock, and gives the
rows back in file order a chunk at a time; and the columns of the ledger rows it
copies (core.bulk.CopyBehind)."""

from django.db import connection
from django.db.models.expressions import RawSQL

from core.staging import StagedTable
from points.csv_rows import GrantRow
from points.models import LedgerEntry
from points.services.posting import MOVEMENT_COLUMNS, movement_values

STAGED = "grant_rows"
STAGED_COLUMNS = {
    "line": "integer",
    "external_id": "text",
    "member": "text",
    "points": "bigint",
    "reason": "text",
    "definition": "text",
    "recorded_id": "bigint",
}


_STAGED = StagedTable(STAGED, STAGED_COLUMNS)


def stage_rows(rows) -> None:
    """Copy the rows into a temporary table as they are read."""
    _STAGED.create(
        (
            (row.line, row.external_id, row.member, row.points, row.reason, row.definition)
            for row in rows
        ),
        filled=list(STAGED_COLUMNS)[:-1],  # recorded_id: mark_recorded
    )


staged_duplicates, drop_staged = _STAGED.duplicates, _STAGED.drop


staged_members = _STAGED.members


def members_removing() -> RawSQL:
    """The customer codes of the staged rows that remove points, as a subquery."""
    return RawSQL(f"SELECT member FROM {STAGED} WHERE points < 0", ())


def mark_recorded() -> None:
    """Each staged row's recorded ledger entry, if any (core.staging)."""
    _STAGED.mark_recorded(LedgerEntry._meta.db_table)


def staged_chunks(size: int):
    """The staged rows in file order, a chunk of `size` at a time, from a server-side
    cursor where the database has them."""
    names = ", ".join(STAGED_COLUMNS)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {STAGED} ORDER BY line")
        while chunk := cursor.fetchmany(size):
            yield [GrantRow(*row) for row in chunk]


# The ledger rows the grants import writes, in this column order (entry_row). The
# columns left out are NULL: an entry's transaction and expiry cutoff.
ENTRY_COLUMNS = [
    "member_id",
    *MOVEMENT_COLUMNS,
    "created_by_id",
    "batch_id",
    "external_id",
    "created_at",
]


def entry_row(member_id: int, move, *, by_id, batch_id, external_id, now) -> tuple:
    """A ledger row (ENTRY_COLUMNS) of a Movement."""
    return (member_id, *movement_values(move), by_id, batch_id, external_id, now)
