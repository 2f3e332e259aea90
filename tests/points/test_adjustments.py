"""P6: manual adjustments by staff."""

import pytest
from django.core.exceptions import ValidationError

from points.models import LedgerEntry
from points.services import adjust_points
from tests.conftest import (
    definition,
    ledger_state,
    summary,
)

pytestmark = pytest.mark.django_db


# P6


def test_P6_negative_adjustment_beyond_available_is_refused_and_writes_nothing(member, buy, staff):
    buy(member, "300")
    before = ledger_state()
    with pytest.raises(ValidationError) as exc:
        adjust_points(member=member, points=-301, reason="Typo", by=staff)
    assert "Cannot remove 301 points" in str(exc.value) and "only 300 available" in str(exc.value)
    assert ledger_state() == before


def test_P6_adjustment_records_the_user_and_reason_and_is_available_at_once(member, staff):
    entry = adjust_points(member=member, points=250, reason="Damaged parcel", by=staff)
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.created_by, stored.reason, stored.kind) == (
        staff,
        "Damaged parcel",
        "adjustment",
    )
    s = summary(member, now=stored.issued_at)
    assert s["available"] == 250
    assert s["lifetime"] == 0  # the default definition does not count toward the tier


def test_P6_a_tier_counting_definition_moves_lifetime_points(member, staff):
    adjust_points(
        member=member,
        points=1000,
        reason="Missing purchase",
        by=staff,
        definition=definition("goodwill-tier-points"),
    )
    assert summary(member)["qualified_tier"].code == "silver"


@pytest.mark.parametrize(
    "points, reason, message",
    [
        (0, "x", "other than zero"),
        (1.5, "x", "whole number"),
        (10, "  ", "Say why"),
        (10, "\u200b\u200b", "Say why"),  # zero-width spaces: nothing a reader can see
    ],
)
def test_P6_adjustment_needs_whole_points_and_a_reason(member, staff, points, reason, message):
    with pytest.raises(ValidationError, match=message):
        adjust_points(member=member, points=points, reason=reason, by=staff)


def test_P6_adjustment_needs_a_staff_user(member):
    with pytest.raises(ValidationError, match="staff user"):
        adjust_points(member=member, points=10, reason="x", by=None)
