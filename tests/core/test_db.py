"""core.db.Compiled: an ORM query compiled once answers each call with that call's values.
core.db.whole_table_read: no nested loops within it, as before after it."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from core.db import Compiled, whole_table_read
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
