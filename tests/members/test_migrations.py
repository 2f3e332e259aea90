"""The members app's data migrations, on the rows they were written for."""

import hashlib

import pytest

from members.models import Member
from members.selectors import erased_codes
from tests.conftest import postgres_only
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]


def test_the_erased_codes_kept_before_are_keyed_and_still_known(make_member, staff):
    # given: an account erased before its code was kept keyed (a plain SHA-256)
    from members.services import erase_member

    erased = erase_member(member=make_member("M-OLD-1"), by=staff)
    migrate([("members", "0033_names_read_as_they_show")])
    plain = hashlib.sha256(b"erased customer code:M-OLD-1").hexdigest()
    Member.objects.filter(pk=erased.pk).update(erased_code=plain)

    # when: the upgrade
    migrate([("members", "0034_erased_codes_keyed")])

    # then: the plain hash is gone, and the code is known as an erased customer's
    assert Member.objects.get(pk=erased.pk).erased_code != plain
    assert erased_codes(["M-OLD-1", "M-OTHER"]) == {"M-OLD-1"}


def test_drops_recorded_before_keep_the_freeze_their_explanation_read(
    make_member, buy, staff, degradation
):
    # given: Gold, frozen until 31 Mar, dropped on 1 Jul, recorded before drops kept it;
    # and a drop of another member, never frozen
    from datetime import date

    from members.models import TierChange
    from points.services.freezing import freeze_member
    from tests.conftest import at
    from tiers.services import degrade_inactive_members

    frozen, never = make_member(joined_at=at("2025-12-01")), make_member(joined_at=at("2025-12-01"))
    for member in (frozen, never):
        buy(member, "3000", when=at("2026-01-01"))
    freeze_member(
        member=frozen, until=date(2026, 3, 31), reason="Hospital", by=staff, now=at("2026-02-01")
    )
    degrade_inactive_members(now=at("2026-07-01", 3))
    migrate([("members", "0034_erased_codes_keyed")])

    # when: the upgrade
    migrate([("members", "0035_tier_change_keeps_the_freeze")])

    # then: the frozen member's drop keeps that freeze; the other's none
    drops = TierChange.objects.filter(reason="degradation")
    frozen.refresh_from_db()
    assert drops.get(member=frozen).frozen_until == frozen.frozen_until
    assert drops.get(member=never).frozen_until is None


@postgres_only
def test_the_tier_index_built_again_after_a_build_stopped_half_way():
    """Found by an audit of upgrades: a build stopped by MIGRATE_LOCK_TIMEOUT left its
    index, invalid, and the same command run again failed on its name ("relation
    member_tier_newest already exists") where deploy.md says it goes on from there."""
    from django.db import connection

    # given: the index left behind by a build that stopped
    migrate([("members", "0026_lifetime_indexes_end_with_id")])
    with connection.cursor() as cursor:
        cursor.execute("CREATE INDEX member_tier_newest ON members_member (id)")

    # when: migrate again
    migrate([("members", "0027_member_tier_newest")])

    # then: the index is the migration's, and valid
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'member_tier_newest'"
        )
        valid, definition = cursor.fetchone()
    assert valid and "(effective_tier_id, id)" in definition
