"""Every hand-written statement of points and every switch on the database vendor,
behind the services that use them: the rules never read SQL, and the SQL says here
why it is written by hand (a statement that runs for every purchase, set-based jobs,
the import's staging table)."""

import functools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone
from psycopg.types.json import Jsonb

from core.db import fetch_prepared
from core.staging import StagedTable
from members.models import Member, Notification, TierChange
from points.csv_rows import ImportRow
from points.expiry_selectors import stake_cte
from points.models import LedgerEntry, Transaction
from tiers.models import ProgrammeVersion

MEMBER_CACHE_FIELDS = [
    "points_balance",
    "lifetime_points",
    "qualified_tier",
    "effective_tier",
    "best_tier",
    "last_purchase_at",
]
# Compared by the write without the lock, not written: a merge can give the member a
# referrer (the closed account's), and then their first purchase pays the referral,
# which the unlocked write does not (earning._record_purchase_unlocked).
MEMBER_COMPARED_FIELDS = [*MEMBER_CACHE_FIELDS, "referred_by"]


# The statements that run for every purchase: the member's row, read (and locked)
# with what a write needs to know; then the transaction, its entries and the caches.


def read_member(member_id: int, external_id: str | None, for_update: bool):
    """(member, programme version, id recorded under external_id) in one round trip.
    Written as SQL, prepared, because it runs for every purchase: composing it with the
    ORM, or reading it through `raw()`, cost more than executing it."""
    names, converters = _member_columns()
    *values, version, recorded_id = fetch_prepared(_lock_sql(for_update), [external_id, member_id])
    for i, convert, column in converters:
        values[i] = convert(values[i], column, connection)
    return Member.from_db(connection.alias, names, values), version, recorded_id


def write_transaction(member: Member, txn: Transaction, entries) -> None:
    """Save a new transaction, its entries and the locked member's caches. On
    PostgreSQL in one statement: one round trip instead of three."""
    if connection.vendor != "postgresql":
        txn.save()
        LedgerEntry.objects.bulk_create(entries)
        member.save(update_fields=MEMBER_CACHE_FIELDS)
    elif not insert_transaction(member, txn, entries):
        raise RuntimeError(f"Member {member.pk} was not updated while locked.")


@functools.cache
def _member_columns():
    """The member's attribute names, and the database's converters of its columns
    (SQLite gives times as text), in the order `_lock_sql` selects them."""
    fields = Member._meta.concrete_fields
    converters = []
    for i, column in enumerate(f.get_col(Member._meta.db_table) for f in fields):
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            converters.append((i, convert, column))
    return [f.attname for f in fields], converters


@functools.cache
def _lock_sql(for_update: bool) -> str:
    lock = " FOR UPDATE OF m" if for_update and connection.features.has_select_for_update_of else ""
    columns = ", ".join(
        f"m.{connection.ops.quote_name(f.column)}" for f in Member._meta.concrete_fields
    )
    return (
        f"SELECT {columns}, (SELECT token FROM {ProgrammeVersion._meta.db_table} LIMIT 1)"
        f" AS programme_version, (SELECT id FROM {Transaction._meta.db_table}"
        f" WHERE external_id = %s) AS recorded_id"
        f" FROM {Member._meta.db_table} m WHERE m.id = %s{lock}"
    )


def writes_unlocked() -> bool:
    """Outside a transaction on PostgreSQL, where one statement is its own transaction."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def cached(member: Member) -> list:
    """The member's caches and referrer as they are now: insert_transaction's
    `unless_changed`."""
    return [getattr(member, f.attname) for f in _compared_fields()]


@functools.cache
def _compared_fields():
    return [Member._meta.get_field(name) for name in MEMBER_COMPARED_FIELDS]


def insert_transaction(member: Member, txn: Transaction, entries, *, unless_changed=None) -> bool:
    """UPDATE the member's caches, INSERT the transaction, INSERT its entries linked to
    the new id: data-modifying CTEs of one statement, built once per shape.

    With `unless_changed` (as read, in MEMBER_COMPARED_FIELDS order) the member
    is updated only if its caches and referrer still hold those values, and the rows are inserted
    only if it was, and the account was not erased meanwhile (an erasure changes none of
    the caches): a conditional update in place of the member lock. Never for a merged
    account (closed meanwhile: nothing written). Returns whether it wrote."""
    txn_fields, entry_fields, member_fields = written_fields()
    params = [getattr(member, f.attname) for f in member_fields]
    params.append(member.pk)
    if unless_changed is not None:
        params += unless_changed
    params += [getattr(txn, f.attname) for f in txn_fields]
    for entry in entries:
        params += [_entry_value(entry, f) for f in entry_fields]
    sql = _insert_transaction_sql(len(entries), unless_changed is not None)
    written = fetch_prepared(sql, params)
    if written is None:
        return False
    txn.pk, entry_ids = written
    txn._state.adding, txn._state.db = False, connection.alias
    for entry, pk in zip(entries, entry_ids, strict=True):
        entry.pk, entry.transaction_id = pk, txn.pk
        entry._state.adding, entry._state.db = False, connection.alias
    return True


def _entry_value(entry: LedgerEntry, field):
    value = getattr(entry, field.attname)
    return Jsonb(value) if value is not None and field.attname == "campaign_points" else value


@functools.cache
def written_fields():
    """The columns `insert_transaction` writes: a transaction's, an entry's other than
    its transaction link (the new id), the member's caches."""
    txn_fields = [f for f in Transaction._meta.concrete_fields if not f.primary_key]
    entry_fields = [
        f
        for f in LedgerEntry._meta.concrete_fields
        if not f.primary_key and f.name != "transaction"
    ]
    member_fields = [Member._meta.get_field(name) for name in MEMBER_CACHE_FIELDS]
    return txn_fields, entry_fields, member_fields


@functools.cache
def _insert_transaction_sql(entry_count: int, conditional: bool) -> str:
    txn_fields, entry_fields, member_fields = written_fields()
    quote = connection.ops.quote_name

    def columns(fields):
        return ", ".join(quote(f.column) for f in fields)

    def values(fields):  # typed: the rows are selected, not inserted from VALUES
        return ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)

    caches = ", ".join(f"{quote(f.column)} = %s" for f in member_fields)
    # Without the lock: not if an erasure committed after the rules read the account (it
    # changes none of the caches). Under the lock, the caller has checked (a return of an
    # erased account's purchase still takes its points back).
    unchanged = (
        " AND erased_at IS NULL"
        f" AND ({columns(_compared_fields())}) IS NOT DISTINCT FROM"
        f" ({values(_compared_fields())})"
        if conditional
        else ""
    )
    entry_rows = " UNION ALL ".join(
        [f"SELECT {values(entry_fields)}, txn.id FROM txn"] * entry_count
    )
    entries = (
        f"INSERT INTO {LedgerEntry._meta.db_table} ({columns(entry_fields)}, transaction_id)"
        f" {entry_rows} RETURNING id"
        if entry_count
        else "SELECT NULL::bigint AS id WHERE false"
    )
    return (
        f"WITH member AS (UPDATE {Member._meta.db_table} SET {caches}"
        f" WHERE id = %s AND merged_into_id IS NULL{unchanged} RETURNING id),"
        f" txn AS (INSERT INTO {Transaction._meta.db_table} ({columns(txn_fields)})"
        f" SELECT {values(txn_fields)} FROM member RETURNING id),"
        f" entries AS ({entries})"
        f" SELECT id, ARRAY(SELECT id FROM entries ORDER BY id) FROM txn"
    )


# The import's staging table: the file's rows as they are read, so that the database
# finds duplicates and rows recorded before, and gives them back in time order.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MICROSECOND = timedelta(microseconds=1)


STAGED = "import_rows"


STAGED_COLUMNS = {
    "line": "integer",
    "external_id": "text",
    "member": "text",
    "kind": "text",
    "amount": "text",  # the file's own digits: messages quote them as written
    "occurred_at": "bigint",  # microseconds since 1970 UTC: sorts as time does
    "channel": "text",
    "store": "text",
    "original_external_id": "text",
    "recorded_id": "bigint",
}


_STAGED = StagedTable(STAGED, STAGED_COLUMNS)


def stage_rows(rows) -> None:
    """Copy the rows into a temporary table as they are read."""
    _STAGED.create(
        (
            (
                row.line,
                row.external_id,
                row.member,
                row.kind,
                str(row.amount),
                (row.occurred_at - _EPOCH) // _MICROSECOND,
                row.channel,
                row.store,
                row.original_external_id,
            )
            for row in rows
        ),
        filled=list(STAGED_COLUMNS)[:-1],  # recorded_id: mark_recorded
    )


staged_duplicates, staged_count, drop_staged = _STAGED.duplicates, _STAGED.count, _STAGED.drop


def mark_recorded() -> None:
    """Each staged row's recorded transaction, if any (core.staging)."""
    _STAGED.mark_recorded(Transaction._meta.db_table)


def staged_originals() -> set[str]:
    """The external ids of the purchases the staged returns name."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT original_external_id FROM {STAGED} WHERE kind = 'return'")
        return {name for (name,) in cursor.fetchall()}


def staged_purchases(names: set[str]) -> dict[str, str]:
    """Of these external ids, those of staged purchases, with their customer code."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT external_id, member FROM {STAGED} WHERE kind = 'purchase' "
            f"AND external_id IN ({', '.join(['%s'] * len(names))})",
            list(names),
        )
        return dict(cursor.fetchall())


staged_members = _STAGED.members


def staged_chunks(size: int):
    """The staged rows in `occurred_at` order (for equal times, purchases before
    returns, then the file's order: a return dated as its purchase follows it), a chunk
    of `size` at a time, from a server-side cursor where the database has them."""
    names = ", ".join(STAGED_COLUMNS)
    order = "occurred_at, kind = 'return', line"
    with connection.chunked_cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {STAGED} ORDER BY {order}")
        while chunk := cursor.fetchmany(size):
            yield [
                ImportRow(*row[:4], Decimal(row[4]), _EPOCH + row[5] * _MICROSECOND, *row[6:])
                for row in chunk
            ]


def planned_rows(model) -> int:
    """How many rows the planner believes a table has (PostgreSQL; 0 elsewhere)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table]
        )
        return max(int(cursor.fetchone()[0]), 0)


# Expiry (E2-E4): inserts from the one query of what is at stake (points_at_stake), so
# a cutoff is a few statements whatever the number of members. ON CONFLICT DO NOTHING:
# the unique (member, cutoff) keys decide between runs at the same time.


def insert_expiry_entries(stake, *, cutoff: date, at: datetime, reason: str) -> int:
    """One expiry entry of minus the stake for each member of `stake`, issued and
    available at `at`; returns how many were written (not those written before)."""
    with_stake, stake_params = stake_cte(stake)
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ledger} (member_id, kind, points, counts_toward_tier, redeemable,
                                  issued_at, accrue_at, cutoff, reason, created_at)
            {with_stake}
            SELECT s.member_id, %s, -s.at_stake, FALSE, TRUE, %s, %s, %s, %s, %s
            FROM stake s
            WHERE TRUE  -- SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
            ON CONFLICT DO NOTHING
            """,
            [
                *stake_params,
                LedgerEntry.Kind.EXPIRY,
                *[connection.ops.adapt_datetimefield_value(t) for t in (at, at)],
                connection.ops.adapt_datefield_value(cutoff),
                reason,
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        return cursor.rowcount


def count_expiry_in_balances(*, cutoff: date, first_id: int, last_id: int) -> None:
    """Take the expiry entries of `cutoff` off the cached balances of the members with
    ids in [first_id, last_id], once per member: `expired_through` records it."""
    member, ledger = Member._meta.db_table, LedgerEntry._meta.db_table
    day = connection.ops.adapt_datefield_value(cutoff)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {member} SET points_balance = {member}.points_balance + e.points,
                                expired_through = %s
            FROM {ledger} e
            WHERE e.member_id = {member}.id AND e.kind = %s AND e.cutoff = %s
              AND e.transaction_id IS NULL  -- the job's, not a late return's
              AND e.member_id BETWEEN %s AND %s
              AND ({member}.expired_through IS NULL OR {member}.expired_through < %s)
            """,
            [day, LedgerEntry.Kind.EXPIRY, day, first_id, last_id, day],
        )


def insert_expiry_reminders(stake, *, cutoff: date, now: datetime) -> int:
    """One reminder in the outbox for each member of `stake`, once per cutoff."""
    with_stake, stake_params = stake_cte(stake)
    outbox = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {outbox} (member_id, kind, context, cutoff, points, created_at)
            {with_stake}
            SELECT s.member_id, %s, '{{}}', %s, s.at_stake, %s FROM stake s
            WHERE TRUE
            ON CONFLICT DO NOTHING
            """,
            [
                *stake_params,
                Notification.Kind.EXPIRY_REMINDER,
                connection.ops.adapt_datefield_value(cutoff),
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        return cursor.rowcount


def campaign_totals(*, since: datetime, until: datetime) -> list[tuple]:
    """(campaign id, points added, members, purchases, first and last issued_at) of the
    purchases earned under each campaign from `since` to before `until`: their entries'
    campaign_points (LedgerEntry) taken apart, one grouped statement through the
    partial index of campaign earnings. JSON is read by each vendor's own function."""
    each = "jsonb_each_text" if connection.vendor == "postgresql" else "json_each"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT CAST(c.key AS bigint), SUM(CAST(c.value AS bigint)),"
            f" COUNT(DISTINCT e.member_id), COUNT(*), MIN(e.issued_at), MAX(e.issued_at)"
            f" FROM {LedgerEntry._meta.db_table} e, {each}(e.campaign_points) c"
            f" WHERE e.campaign_points IS NOT NULL AND e.issued_at >= %s AND e.issued_at < %s"
            f" GROUP BY c.key",
            [
                connection.ops.adapt_datetimefield_value(since),
                connection.ops.adapt_datetimefield_value(until),
            ],
        )
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return rows
    return [(*rest, _sqlite_time(first), _sqlite_time(last)) for *rest, first, last in rows]


def _sqlite_time(text: str) -> datetime:
    """An aggregate of a datetime column, which SQLite gives as UTC text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def counted_with_moves(members, closed, *, since: datetime) -> list[tuple]:
    """`members` and `closed` (grouped querysets of (day, from tier, to tier, count)) and
    the tier moves counted from `since`, in one statement, so that members and history
    are read as of one moment.

    A move counts from its own time, or from the latest time of the moves recorded
    before it for the same member if that is later: a back-dated change (an older
    purchase imported after a newer one) then follows the change recorded before it,
    and each member's moves form one chain in time. A window function, which the ORM
    cannot group by; only members with a move dated from `since` are read."""
    history = TierChange._meta.db_table
    zone = timezone.get_current_timezone_name()
    day, day_params = connection.ops.datetime_cast_date_sql("effective_at", (), zone)
    moves = (
        f"SELECT {day}, from_tier_id, to_tier_id, COUNT(*) FROM ("
        f" SELECT from_tier_id, to_tier_id, MAX(changed_at) OVER"
        f" (PARTITION BY member_id ORDER BY id) AS effective_at FROM {history}"
        f" WHERE member_id IN (SELECT member_id FROM {history} WHERE changed_at >= %s)"
        f") moves WHERE effective_at >= %s GROUP BY 1, 2, 3"
    )
    members_sql, members_params = members.query.sql_with_params()
    closed_sql, closed_params = closed.query.sql_with_params()
    since_param = connection.ops.adapt_datetimefield_value(since)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{members_sql} UNION ALL {moves} UNION ALL {closed_sql}",
            [*members_params, *day_params, since_param, since_param, *closed_params],
        )
        rows = cursor.fetchall()
    if connection.vendor == "postgresql":
        return rows
    return [(day and date.fromisoformat(day), *rest) for day, *rest in rows]  # SQLite: text
