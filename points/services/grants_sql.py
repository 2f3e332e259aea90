"""The statements of the grants import (points.services.grants), apart from its rules:
the file's rows staged in a temporary table as they are read, so that the database
finds the duplicates, the rows recorded before and the members to lock, and gives the
rows back in file order a chunk at a time; and the columns of the ledger rows it
copies (core.bulk.CopyBehind)."""

from django.db import connection
from django.db.models.expressions import RawSQL

from core.bulk import insert_rows
from points.csv_rows import GrantRow
from points.models import LedgerEntry

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


def stage_rows(rows) -> None:
    """Copy the rows into a temporary table as they are read."""
    columns = ", ".join(f"{name} {type_}" for name, type_ in STAGED_COLUMNS.items())
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGED} ({columns})")
    insert_rows(
        STAGED,
        list(STAGED_COLUMNS)[:-1],
        (
            (row.line, row.external_id, row.member, row.points, row.reason, row.definition)
            for row in rows
        ),
    )


def staged_duplicates():
    """(line, first line) of every row whose external_id an earlier line of the file has."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.line, f.first_line FROM {STAGED} s JOIN"
            f" (SELECT external_id, MIN(line) AS first_line FROM {STAGED}"
            f" GROUP BY external_id HAVING COUNT(*) > 1) f ON f.external_id = s.external_id"
            f" WHERE s.line <> f.first_line"
        )
        return cursor.fetchall()


def staged_members(*, removing_only=False) -> RawSQL:
    """The customer codes of the staged rows (or of those that remove points), as a
    subquery."""
    where = " WHERE points < 0" if removing_only else ""
    return RawSQL(f"SELECT member FROM {STAGED}{where}", ())


def mark_recorded() -> None:
    """The id of the ledger entry each staged external_id was recorded under, if any."""
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {STAGED} SET recorded_id = e.id FROM {ledger} e"
            f" WHERE e.external_id = {STAGED}.external_id"
        )


def staged_chunks(size: int):
    """The staged rows in file order, a chunk of `size` at a time, from a server-side
    cursor where the database has them."""
    names = ", ".join(STAGED_COLUMNS)
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {STAGED} ORDER BY line")
        while chunk := cursor.fetchmany(size):
            yield [GrantRow(*row) for row in chunk]


def drop_staged() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {STAGED}")


# The ledger rows the grants import writes, in this column order (entry_row). The
# columns left out are NULL: an entry's transaction and expiry cutoff.
ENTRY_COLUMNS = [
    "member_id",
    "definition_id",
    "kind",
    "points",
    "counts_toward_tier",
    "redeemable",
    "issued_at",
    "accrue_at",
    "reason",
    "created_by_id",
    "batch_id",
    "external_id",
    "created_at",
]


def entry_row(member_id: int, move, *, by_id, batch_id, external_id, now) -> tuple:
    """A ledger row (ENTRY_COLUMNS) of a Movement."""
    return (
        member_id,
        move.definition_id,
        move.kind,
        move.points,
        move.counts_toward_tier,
        move.redeemable,
        move.issued_at,
        move.accrue_at,
        move.reason,
        by_id,
        batch_id,
        external_id,
        now,
    )
