"""core.db.Compiled: an ORM query compiled once answers each call with that call's values.
core.db.whole_table_read: no nested loops within it, as before after it. Prepared
statements leave nothing behind once their connection is closed; a lost connection is
PostgreSQL's, never an SQLite error."""

import gc
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from core.db import Compiled, connection_lost, fetch_prepared, whole_table_read
from members.models import Member
from tests.conftest import postgres_only

pytestmark = pytest.mark.django_db


def _joined_after(code, since):
    # "never" is a constant of the query: it must stay one.
    return (
        Member.objects.filter(external_id=code, joined_at__gt=since)
        .exclude(first_name="never")
        .values_list("external_id", "email")
    )


@pytest.fixture
def joined_after():
    return Compiled(_joined_after, code="\x00", since=datetime(1, 1, 1, tzinfo=UTC))


def test_a_compiled_query_answers_with_each_calls_values(make_member, joined_after):
    # given
    early = make_member(joined_at=datetime(2026, 1, 1, tzinfo=UTC))
    late = make_member(joined_at=datetime(2026, 6, 1, tzinfo=UTC))
    march = datetime(2026, 3, 1, tzinfo=UTC)

    # when / then: the same statement, other values, the ORM's answers
    for member in (early, late):
        for since in (datetime(2025, 1, 1, tzinfo=UTC), march):
            expected = _joined_after(member.external_id, since).first()
            assert joined_after.first(code=member.external_id, since=since) == expected
    assert joined_after.first(code=late.external_id, since=march) == (late.external_id, late.email)
    assert joined_after.first(code=early.external_id, since=march) is None
    assert joined_after.first(code="nobody", since=march) is None


def _nested_loops() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_nestloop")
        return cursor.fetchone()[0]


@postgres_only
def test_a_whole_table_read_plans_without_nested_loops_and_leaves_the_setting_as_it_was():
    # given / when: a read in the block, then one that fails in it
    with transaction.atomic():
        with whole_table_read():
            inside = _nested_loops()
        after = _nested_loops()
        with pytest.raises(LookupError), whole_table_read():
            raise LookupError
        after_an_error = _nested_loops()

    # then
    assert (inside, after, after_an_error) == ("off", "on", "on")


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # connections closed
def test_a_connection_closed_is_freed_with_its_prepared_statements():
    """Found by a review: each connection the prepared statements were kept for stayed in
    memory once closed (CONN_MAX_AGE, a restart), in every web thread and worker."""

    def open_connections() -> int:
        gc.collect()
        # type(), not isinstance(): a dead weak proxy among the objects raises on the latter
        return sum(issubclass(type(thing), psycopg.Connection) for thing in gc.get_objects())

    # given: a connection that ran a prepared statement
    fetch_prepared("SELECT %s::int", [1])
    before = open_connections()

    # when: it is closed and another made, twenty times over
    for _ in range(20):
        connection.close()
        fetch_prepared("SELECT %s::int", [1])

    # then: no more connections in memory than there were
    assert open_connections() <= before


def test_a_statement_s_error_is_not_a_lost_connection():
    """Found by a review: on SQLite (whose errors carry no SQLSTATE, and are all
    OperationalError) a locked file or a missing table was reported as the connection to
    the database being lost (batches.DATABASE_LOST)."""
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not connection_lost(raised.value)
