"""Fast bulk writes for the import and other mass writers.

On PostgreSQL, rows go in with COPY (ids taken from the table's sequence first, so the
caller can link rows to each other); elsewhere, and for a handful of rows, through the
ORM's bulk methods."""

import gc
import json
import sys
import threading
import uuid
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from operator import attrgetter

from django.db import connection

COPY_FROM = 100  # fewer rows than this: the ORM's single statement is quicker


def _copying(objs) -> bool:
    return connection.vendor == "postgresql" and len(objs) >= COPY_FROM


def _rows(objs, fields):
    """The column values of objs, as tuples in the order of fields."""
    relations = [f for f in fields if f.is_relation]
    for obj in objs:
        for field in relations:
            if getattr(obj, field.attname) is None:
                related = field.get_cached_value(obj, None)  # linked before it had an id
                if related is not None:
                    setattr(obj, field.attname, related.pk)
    values = attrgetter(*(f.attname for f in fields))
    for obj in objs:
        yield values(obj)


def bulk_insert(model, objs) -> None:
    """Insert new rows and set their primary keys."""
    if not objs:
        return
    if not _copying(objs):
        model.objects.bulk_create(objs, batch_size=1000)
        return
    fields = model._meta.concrete_fields
    for obj, pk in zip(objs, reserve_ids(model, len(objs)), strict=True):
        obj.pk = pk
        obj._state.adding = False
    with connection.cursor() as cursor:
        _copy(cursor, model._meta.db_table, [f.column for f in fields], _rows(objs, fields))


def reserve_ids(model, count: int) -> list[int]:
    """Primary keys for `count` new rows, taken before they are written so that other
    rows can point at them: from the table's sequence, which no one else will hand out
    again (on SQLite, its AUTOINCREMENT counter, moved on under the write lock SQLite
    holds for the whole transaction)."""
    if not count:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence named apart: looked up inside, it is looked up once per id.
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count]
            )
            return [pk for (pk,) in cursor.fetchall()]
        cursor.execute(
            f"SELECT MAX(seq) FROM (SELECT seq FROM sqlite_sequence WHERE name = %s"
            f" UNION ALL SELECT MAX(id) FROM {table})",
            [table],
        )
        last = cursor.fetchone()[0] or 0
        cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
        cursor.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, last + count]
        )
        return list(range(last + 1, last + 1 + count))


def bulk_update(model, objs, field_names) -> None:
    """Write the given fields of existing rows: one UPDATE from a copied temporary
    table on PostgreSQL."""
    if not _copying(objs):
        model.objects.bulk_update(objs, field_names, batch_size=1000)
        return
    fields = [model._meta.pk, *(model._meta.get_field(name) for name in field_names)]
    temp = f"bulk_{uuid.uuid4().hex[:12]}"
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        columns = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
        cursor.execute(f"CREATE TEMPORARY TABLE {temp} ({columns}) ON COMMIT DROP")
        _copy(cursor, temp, [f.column for f in fields], _rows(objs, fields))
        assignments = ", ".join(f"{quote(f.column)} = t.{quote(f.column)}" for f in fields[1:])
        cursor.execute(
            f"UPDATE {model._meta.db_table} m SET {assignments} FROM {temp} t "
            f"WHERE m.{quote(fields[0].column)} = t.{quote(fields[0].column)}"
        )


def insert_rows(table: str, columns, rows) -> None:
    """Insert tuples into a table as they come, holding at most a batch of them: COPY
    on PostgreSQL, batches of INSERT elsewhere."""
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    rows = iter(rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _copy(cursor, table, columns, rows)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        while batch := list(islice(rows, 1000)):
            cursor.executemany(sql, [[_adapt(v) for v in row] for row in batch])


def _adapt(value):
    """A value as the ORM stores it outside PostgreSQL: times in its format, JSON
    (a dict or list: COPY takes them as they are) as text."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _copy(cursor, table: str, columns, rows) -> None:
    _write_copy(cursor.cursor, *_copy_statement(cursor, table, columns), rows)


def _copy_statement(cursor, table: str, columns) -> tuple[str, list[int] | None]:
    """The COPY of `columns` of a table, and the types of its binary format: psycopg
    writes that about ten times faster than text, which formats every time and number.
    A JSON column's values are Python objects (a dict, a list or None)."""
    cursor.execute(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attname = ANY(%s)",
        [table, list(columns)],
    )
    oids = dict(cursor.fetchall())
    types = [oids[column] for column in columns]
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    return f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)", types


def _write_copy(cursor, statement: str, types, rows) -> None:
    """COPY tuples through a psycopg cursor."""
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


# The imports running in this process (threads of one web process, each its own), and
# Python's switch interval before the first: the last to end puts it back.
_faster = {"imports": 0, "interval": sys.getswitchinterval()}
_faster_lock = threading.Lock()


def _switching_faster(*, by: int, interval: float | None = None) -> None:
    """An import starts (`by` 1, at `interval`) or ends (`by` -1)."""
    with _faster_lock:
        if by > 0 and _faster["imports"] == 0:
            _faster["interval"] = sys.getswitchinterval()
        _faster["imports"] += by
        if by > 0:
            sys.setswitchinterval(interval)
        elif _faster["imports"] == 0:
            sys.setswitchinterval(_faster["interval"])


class CopyBehind:
    """Inserts rows with COPY on a second thread while the caller computes the next
    ones: over the same connection, so in the same transaction, with the database and
    Python working at once (on a large import each would otherwise wait for the other).
    PostgreSQL only; elsewhere `insert` writes at once. Used inside one atomic block,
    with no savepoint of its own around the writes.

    PostgreSQL's foreign-key triggers check every row (turning them off needs
    session_replication_role, which would also turn off the ledger's append-only guard,
    so the application's role may not set it). Django defers them to the commit, when
    Python has nothing left to do and the database checks millions of rows alone; in
    the block they are checked as each statement ends instead, so a COPY's checks run
    on the writing thread while the next rows are computed. Tables are written in
    order, the rows others name first.

    The caller's own queries wait for the COPY: `wait()` says so, and psycopg holds the
    connection for a COPY anyway. One write is in flight at a time."""

    def __init__(self):
        self._thread = ThreadPoolExecutor(1) if connection.vendor == "postgresql" else None
        self._statements = {}
        self._pending = None

    # How long a thread may keep Python's lock while another waits for it. The default
    # (5 ms) leaves the database idle whenever the writing thread, woken because the
    # database took the rows sent, waits for the computing thread to let go: a fifth
    # of a large import's time.
    SWITCH_INTERVAL = 0.0005

    def __enter__(self):
        if self._thread:
            self._set_constraints("IMMEDIATE")
            _switching_faster(by=1, interval=self.SWITCH_INTERVAL)  # undone by __exit__
        return self

    def __exit__(self, error_type, *_):
        failed = error_type is not None
        try:
            if not failed:
                self.wait()
            elif self._pending:  # the caller's error comes first; the COPY ends first
                futures.wait([self._pending])
        except BaseException:
            failed = True
            raise
        finally:
            if self._thread:
                _switching_faster(by=-1)
                self._thread.shutdown()
                # As Django has them again; a transaction that failed or is to be
                # rolled back (a dry run) takes no more commands, nor needs any.
                if not (failed or connection.needs_rollback):
                    self._set_constraints("DEFERRED")

    @staticmethod
    def _set_constraints(when: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"SET CONSTRAINTS ALL {when}")

    def insert(self, *tables, analyze=False) -> None:
        """(model, columns, rows) of each table, written in that order, then (with
        `analyze`) the tables' statistics refreshed for the planner."""
        if self._thread is None:
            for model, columns, rows in tables:
                insert_rows(model._meta.db_table, columns, rows)
            return  # SQLite plans without statistics of its own
        self.wait()
        tables = [(model, tuple(columns), rows) for model, columns, rows in tables if rows]
        writes = [(*self._statement_of(model, columns), rows) for model, columns, rows in tables]
        analyzed = [model._meta.db_table for model, *_ in tables] if analyze else []
        self._pending = self._thread.submit(self._write, connection.connection, writes, analyzed)

    def wait(self) -> None:
        """Until the last write is done; raises its error, if it failed."""
        if self._pending:
            pending, self._pending = self._pending, None
            with connection.wrap_database_errors:  # as Django's own queries raise them
                pending.result()

    def _statement_of(self, model, columns):
        if (model, columns) not in self._statements:
            with connection.cursor() as cursor:
                copy = _copy_statement(cursor, model._meta.db_table, columns)
            self._statements[model, columns] = copy
        return self._statements[model, columns]

    def _write(self, raw_connection, writes, analyzed) -> None:
        with raw_connection.cursor() as cursor:
            for statement, types, rows in writes:
                _write_copy(cursor, statement, types, rows)
            for table in analyzed:
                # Only a table's owner may ANALYZE it: the application's role asks the
                # function the owner made for it (points migration 0008).
                cursor.execute("SELECT loyalty_analyze(%s::regclass)", [table])


@contextmanager
def without_cycle_collection():
    """Python's cycle collector off for a bulk write: it runs every few hundred new
    objects and scans the long-lived ones again each time (the members and purchases
    an import keeps), a tenth of the import's time. A bulk write makes millions of
    short-lived tuples but no reference cycles, so its memory stays the same."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
