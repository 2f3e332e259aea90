"""PostgreSQL's own means, each for the reads or writes it speeds: the statements that
run for every purchase and every API request, the errors worth a retry, and how the
planner is told what it cannot estimate. Elsewhere (SQLite) each is plain Django."""

from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.db.backends.signals import connection_created


def fetch_prepared(sql: str, params) -> tuple:
    """Run `sql` and return its one row. PostgreSQL parses and plans it once per
    connection.

    Django binds parameters in the client, which never prepares a statement; this
    sends them apart from the SQL, so PostgreSQL keeps each statement's plan
    (settings: DATABASE_PREPARED_STATEMENTS). It still runs through Django's cursor
    wrapper: query logging and execute_wrapper see it. Elsewhere, a plain cursor.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.ensure_connection()
    kept = _kept_cursors(db)
    raw = kept.get(sql)
    if raw is None or raw.closed:
        raw = kept[sql] = ServerBindingCursor(db.connection)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    cursor.execute(sql, params)
    return cursor.fetchone()


def _kept_cursors(db) -> dict:
    """{sql: its cursor} on db's connection: a cursor kept per statement keeps the
    adapters psycopg chose for it. Kept on the connection's wrapper (one per thread),
    and dropped with the connection they were made on: each connection closed
    (CONN_MAX_AGE, a restart) would otherwise stay in memory with its cursors."""
    made_on, kept = getattr(db, "_prepared_cursors", (None, None))
    if made_on is not db.connection:
        kept = {}
        db._prepared_cursors = (db.connection, kept)
    return kept


def _session_settings(sender, connection, **kwargs) -> None:
    """The PostgreSQL settings each new session of a database takes
    (settings.DATABASE_SESSION_SETTINGS: the web's lock wait, the migrations'). SET once
    connected rather than sent as the connection's `options`, which a pooler (PgBouncer)
    refuses, failing every connection."""
    wanted = settings.DATABASE_SESSION_SETTINGS.get(connection.alias)
    if wanted and connection.vendor == "postgresql":
        calls = ", ".join("set_config(%s, %s, false)" for _ in wanted)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {calls}", [part for pair in wanted.items() for part in pair])


connection_created.connect(_session_settings)


class Compiled:
    """A read query built with the ORM, compiled to SQL once and then run through
    `fetch_prepared` with each call's values: for the reads of every API request, where
    composing the query cost more than running it. The rule stays in the ORM query.

    `build(**values)` returns a `values_list` queryset of one row at most. It is
    compiled once with `stand_ins`: values no constant of the query can equal (a
    negative id, a time in year 1), so that each parameter of the SQL is known to be
    one of the call's values or a constant. Elsewhere than PostgreSQL, it runs as built.
    """

    def __init__(self, build, **stand_ins):
        self.build, self.stand_ins = build, stand_ins
        self.compiler = None

    def first(self, **values) -> tuple | None:
        if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
            return next(iter(self.build(**values)), None)
        if self.compiler is None:
            self._compile()
        row = fetch_prepared(self.sql, [values[n] if n else p for n, p in self.slots])
        if row is not None and self.converters:  # as the ORM reads them (JSON, say)
            row = next(iter(self.compiler.apply_converters([row], self.converters)))
        return row

    def _compile(self):
        compiler = self.build(**self.stand_ins).query.get_compiler(DEFAULT_DB_ALIAS)
        self.sql, params = compiler.as_sql()
        names = {_key(value): name for name, value in self.stand_ins.items()}
        self.slots = [(names.get(_key(param)), param) for param in params]
        self.converters = compiler.get_converters([column for column, *_ in compiler.select])
        self.compiler = compiler


def _key(value):
    try:
        return type(value), hash(value), value
    except TypeError:  # a list, say: never a stand-in
        return None


# PostgreSQL's codes for a transaction it aborted so that another could go on: a
# deadlock, or a serialization failure. Nothing of it was written; the same work again
# normally succeeds.
RETRYABLE = {"40P01", "40001"}


def retryable(error: Exception) -> bool:
    """Whether a database error aborted a transaction that may simply be run again."""
    return getattr(error.__cause__, "sqlstate", None) in RETRYABLE


def connection_lost(error: Exception) -> bool:
    """Whether a database error is the loss of the connection (the server restarted,
    stopped or could not be reached), not a statement's refusal: PostgreSQL's classes
    08 (connection) and 57P (shutting down), or no code at all (psycopg's own). SQLite's
    errors (a file locked, a table missing) are never a lost connection."""
    cause = error.__cause__
    if not isinstance(error, OperationalError) or not isinstance(cause, psycopg.Error):
        return False
    return cause.sqlstate is None or cause.sqlstate.startswith(("08", "57P"))


UNIQUE_VIOLATION = "23505"


def violated(error: Exception, constraints) -> str | None:
    """The name of the unique constraint, one of `constraints`, that refused a row, if
    that is what the database error is (PostgreSQL names it; elsewhere None)."""
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) != UNIQUE_VIOLATION:
        return None
    name = getattr(getattr(cause, "diag", None), "constraint_name", None)
    return name if name in constraints else None


def keep_statistics(model) -> None:
    """ANALYZE a table too small for autovacuum ever to analyse (it waits for 50 changed
    rows): without statistics PostgreSQL guesses its size, and plans the large reads
    that join it badly (the dashboard's points at stake by tier: 48 s instead of 11.5 s
    at 1,300,000 members, with the four tiers never analysed). Elsewhere, nothing.
    Only a table's owner may ANALYZE it (the application's role was told so in a
    warning, and nothing analysed): the function the owner made for it does (points
    migration 0008), as for an import (core.bulk)."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("SELECT loyalty_analyze(%s::regclass)", [model._meta.db_table])


@contextmanager
def whole_table_read():
    """For a read that sums every member's ledger (what the next cutoff takes): the
    members it counts are picked by the tier each will hold at the cutoff, a CASE over
    their columns whose share PostgreSQL cannot estimate (13,000 of 1,300,000 where
    1,100,000 match), so it looked up the ledger's index once per member instead of
    hashing both tables: 28 s instead of 10 at 2,000,000 entries. Within the block (a
    transaction), on PostgreSQL, no nested loops; as before after it."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), db.cursor() as cursor:
        cursor.execute(  # the setting before, read first
            "WITH was AS MATERIALIZED (SELECT current_setting('enable_nestloop') AS setting)"
            " SELECT setting, set_config('enable_nestloop', 'off', true) FROM was"
        )
        before = cursor.fetchone()[0]
        yield
        # An error rolls the block back, the setting with it; else it is put back here.
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [before])
