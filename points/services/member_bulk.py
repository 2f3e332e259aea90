"""The members import's fast path, behind its rules (points.services.member_import):
the file's rows staged in a temporary table as they are read, so that the database
finds the codes given twice and gives the rows back a chunk at a time, each with what
is stored under its code (the member, its opening balances), for the rules to decide
in memory. The rows they write go in with COPY (core.bulk.CopyBehind); this module
says how they are shaped, and holds every hand-written statement of the import."""

from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from django.db import connection

from core.bulk import reserve_ids
from core.staging import StagedTable
from members.models import Member, TierChange
from points.models import OPENING_LIFETIME_KEY, OPENING_POINTS_KEY, LedgerEntry
from points.services.posting import MOVEMENT_COLUMNS

STAGED = "member_import_rows"
STAGED_COLUMNS = {
    "line": "integer",
    "external_id": "text",
    "email": "text",
    "first_name": "text",
    "last_name": "text",
    "phone": "text",
    "joined_at": "bigint",  # microseconds since 1970 UTC, or NULL: none given
    "birth_date": "text",  # ISO, or NULL
    "opening_points": "bigint",
    "opening_lifetime": "bigint",
    "last_purchase_at": "bigint",  # as joined_at
    "writes": "boolean",  # a known member the row may change: locked (lock_members)
}
# One members import at a time (an advisory lock, PostgreSQL): the codes of a file are
# not in the database before it commits, so no row lock can make the second one wait.
_IMPORT_LOCK = 0x6D656D62  # "memb"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Staged(NamedTuple):
    """A row of the file (MemberRow's fields) with what is stored under its code:
    the member (member_id None: a new code) and its opening-balance entries."""

    line: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    phone: str
    joined_at: datetime | None
    birth_date: date | None
    opening_points: int
    opening_lifetime: int
    last_purchase_at: datetime | None
    writes: bool  # a known member's row that may change it, or list an error: locked
    member_id: int | None
    erased: bool
    stored_email: str
    stored_first_name: str
    stored_last_name: str
    stored_phone: str
    stored_birth_date: date | None
    qualified_tier_id: int
    effective_tier_id: int
    best_tier_id: int
    points_balance: int
    lifetime_points: int
    granted_tier_id: int | None  # a running status match's tier, if any
    points_member_id: int | None  # the member the opening points entry is for, if any
    points_given: int | None
    lifetime_member_id: int | None
    lifetime_given: int | None
    survivor: str | None  # the code of the member this one was merged into, if merged


def lock_imports() -> None:
    """Wait for a members import running in another transaction to end."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IMPORT_LOCK])


_STAGED = StagedTable(STAGED, STAGED_COLUMNS)


def stage(rows) -> None:
    """Copy the checked rows (points.member_rows.MemberRow) into a temporary table as
    they are read."""
    _STAGED.create((_staged_values(row) for row in rows), filled=list(STAGED_COLUMNS)[:-1])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {STAGED}")  # never seen by autovacuum


def _staged_values(row) -> tuple:
    born = None if row.birth_date is None else row.birth_date.isoformat()
    opening = (row.opening_points, row.opening_lifetime)
    return (
        *row[:6],
        _microseconds(row.joined_at),
        born,
        *opening,
        _microseconds(row.last_purchase_at),
    )


def _microseconds(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


def _moment(microseconds: int | None) -> datetime | None:
    return None if microseconds is None else _EPOCH + microseconds * _MICROSECOND


duplicates, staged_count, drop_staged = _STAGED.duplicates, _STAGED.count, _STAGED.drop


def lock_members() -> None:
    """Mark the rows of known members that may change them (contact details or opening
    balances other than those stored) or list an error (an opening balance given
    otherwise before, an erased or merged account), and lock those members in id order
    (the order every writer takes): a purchase or import of theirs waits. The members a
    row leaves as they are stay free: a file imported again, or a CRM's daily copy of
    every member, holds only those it changes. (SQLite writes one transaction at a time
    anyway: it marks them only.)"""
    member = Member._meta.db_table
    unless_given = (
        f"s.{column} <> 0 AND ({given}.id IS NULL OR {given}.member_id <> m.id"
        f" OR {given}.points <> s.{column})"
        for column, given in (("opening_points", "p"), ("opening_lifetime", "l"))
    )
    changes = " OR ".join(
        [
            *(f"(s.{name} <> '' AND s.{name} <> m.{name})" for name in _TEXT_CONTACT),
            "(s.birth_date IS NOT NULL AND (m.birth_date IS NULL"
            " OR CAST(m.birth_date AS text) <> s.birth_date))",
            *(f"({given})" for given in unless_given),
            "m.erased_at IS NOT NULL OR m.merged_into_id IS NOT NULL",
        ]
    )
    writing = (
        f"SELECT m.id, m.external_id FROM {member} m"
        f" JOIN {STAGED} s ON s.external_id = m.external_id{_opening_entries()}"
        f" WHERE {changes}"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH held AS ({writing} ORDER BY m.id FOR UPDATE OF m)"
                f" UPDATE {STAGED} SET writes = TRUE FROM held"
                f" WHERE {STAGED}.external_id = held.external_id"
            )
        else:
            cursor.execute(
                f"UPDATE {STAGED} SET writes = TRUE"
                f" WHERE external_id IN (SELECT external_id FROM ({writing}) w)"
            )


_TEXT_CONTACT = ("email", "first_name", "last_name", "phone")


def _opening_entries() -> str:
    """The joins of each staged row (s) to the opening-balance entries given under its
    code before, if any: p (points) and l (lifetime)."""
    ledger = LedgerEntry._meta.db_table
    return "".join(
        f" LEFT JOIN {ledger} {alias} ON {alias}.external_id = '{key}' || s.external_id"
        for alias, key in (("p", OPENING_POINTS_KEY), ("l", OPENING_LIFETIME_KEY))
    )


def chunks(size: int):
    """The staged rows (Staged) in the file's order, a chunk of `size` at a time, from
    a server-side cursor where the database has them."""
    member = Member._meta.db_table
    names = ", ".join(f"s.{name}" for name in STAGED_COLUMNS)
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT {names}, m.id, m.erased_at IS NOT NULL, m.email, m.first_name,"
            f" m.last_name, m.phone, CAST(m.birth_date AS text), m.qualified_tier_id,"
            f" m.effective_tier_id, m.best_tier_id, m.points_balance, m.lifetime_points,"
            f" m.granted_tier_id, p.member_id, p.points, l.member_id, l.points, sv.external_id"
            f" FROM {STAGED} s"
            f" LEFT JOIN {member} m ON m.external_id = s.external_id"
            f" LEFT JOIN {member} sv ON sv.id = m.merged_into_id{_opening_entries()}"
            f" ORDER BY s.line"
        )
        while chunk := cursor.fetchmany(size):
            yield [_staged(row) for row in chunk]


def _staged(row) -> Staged:
    row = list(row)
    row[6], row[10] = _moment(row[6]), _moment(row[10])
    row[7] = None if row[7] is None else date.fromisoformat(row[7])
    row[11], row[13] = bool(row[11]), bool(row[13])  # writes, erased (SQLite: 0, 1, NULL)
    row[18] = None if row[18] is None else date.fromisoformat(row[18])
    return Staged(*row)


def date_value():
    """How a date goes into the COPY (PostgreSQL: as it is) or into the batches of
    INSERT (elsewhere: as the ORM would store it)."""
    if connection.vendor == "postgresql":
        return lambda day: day
    adapt = connection.ops.adapt_datefield_value
    return lambda day: None if day is None else adapt(day)


# The rows the import writes: their columns, in the order the import builds them. The
# columns left out take their defaults (NULL): a new member's expiry bookkeeping and
# erasure; an entry's transaction, staff user and cutoff; a history
# row's staff user.

MEMBER_COLUMNS = [
    "id",
    "external_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "joined_at",
    "birth_date",
    "qualified_tier_id",
    "effective_tier_id",
    "best_tier_id",
    "points_balance",
    "lifetime_points",
    "last_purchase_at",
]
JOINED_COLUMNS = ["id", "member_id", "reason", "to_tier_id", "qualified_tier_id", "changed_at"]
ENTRY_COLUMNS = ["member_id", *MOVEMENT_COLUMNS, "created_at", "external_id", "batch_id"]
# What a known member's row may change: its contact details and, with opening
# balances, its caches and tiers.
UPDATED_FIELDS = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "birth_date",
    "points_balance",
    "lifetime_points",
    "qualified_tier",
    "effective_tier",
    "best_tier",
]


def tables(members, joined, entries) -> list:
    """(model, columns, rows) for core.bulk.CopyBehind: members first, then what names
    them. The "joined" history rows take their ids now, before the tier changes logged
    after them (tiers.services.TierLog.tables), so that ids follow the member's history."""
    ids = reserve_ids(TierChange, len(joined))
    return [
        (Member, MEMBER_COLUMNS, members),
        (TierChange, JOINED_COLUMNS, [(pk, *row) for pk, row in zip(ids, joined, strict=True)]),
        (LedgerEntry, ENTRY_COLUMNS, entries),
    ]
