"""The statements that run for every purchase."""

import weakref

from django.db import DEFAULT_DB_ALIAS, connections

# psycopg connection -> {sql: its cursor}: a cursor kept per statement keeps the
# adapters psycopg chose for it.
_cursors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    kept = _cursors.setdefault(db.connection, {})
    raw = kept.get(sql)
    if raw is None or raw.closed:
        raw = kept[sql] = ServerBindingCursor(db.connection)
    cursor = db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)
    cursor.execute(sql, params)
    return cursor.fetchone()
