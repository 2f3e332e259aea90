"""Fast bulk writes for the import and other mass writers.

On PostgreSQL, rows go in with COPY (ids taken from the table's sequence first, so the
caller can link rows to each other); elsewhere, and for a handful of rows, through the
ORM's bulk methods."""

import json
import uuid
from datetime import datetime
from itertools import islice
from operator import attrgetter

from django.db import connection
from django.db.models import JSONField

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
    json_columns = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]
    for obj in objs:
        row = values(obj)
        if json_columns:
            row = list(row)
            for i in json_columns:
                row[i] = None if row[i] is None else json.dumps(row[i])
        yield row


def bulk_insert(model, objs) -> None:
    """Insert new rows and set their primary keys."""
    if not objs:
        return
    if not _copying(objs):
        model.objects.bulk_create(objs, batch_size=1000)
        return
    table, fields = model._meta.db_table, model._meta.concrete_fields
    for obj, pk in zip(objs, reserve_ids(model, len(objs)), strict=True):
        obj.pk = pk
    with connection.cursor() as cursor:
        _copy(cursor, table, [f.column for f in fields], _rows(objs, fields))
    for obj in objs:
        obj._state.adding = False


def reserve_ids(model, count: int) -> list[int]:
    """Primary keys for `count` new rows, taken before they are written so that other
    rows can point at them: from the table's sequence on PostgreSQL; past the largest
    id elsewhere (SQLite holds the write lock for the whole transaction)."""
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
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        last = cursor.fetchone()[0]
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
        adapt = connection.ops.adapt_datetimefield_value  # times stored as the ORM does
        while batch := list(islice(rows, 1000)):
            cursor.executemany(
                sql, [[adapt(v) if isinstance(v, datetime) else v for v in row] for row in batch]
            )


def _copy(cursor, table: str, columns, rows) -> None:
    """COPY tuples (in `columns` order) into a table, in PostgreSQL's binary format:
    psycopg writes it about ten times faster than text, which formats every time and
    number. Tables with a JSON column take text (their values come as JSON text)."""
    cursor.execute(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attname = ANY(%s)",
        [table, list(columns)],
    )
    oids = dict(cursor.fetchall())
    types = [oids[column] for column in columns]
    binary = not JSON_TYPES.intersection(types)
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    statement = f"COPY {table} ({names}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    with cursor.cursor.copy(statement) as copy:
        if binary:
            copy.set_types(types)
        for row in rows:
            copy.write_row(row)


JSON_TYPES = frozenset({114, 3802})  # json, jsonb
