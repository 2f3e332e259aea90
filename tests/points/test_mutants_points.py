"""Rules of points whose breaking no other test noticed (found by mutation): returns'
cap and counting (P4), adjustments' bounds (P6), expiry's first cutoff, reminders and
freezes (E1, E4), and the member as of a moment (Member 360)."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from members.models import Notification
from points.expiry_selectors import expiry_impact
from points.models import ExpiryPolicy, LedgerEntry
from points.selectors import member_as_of
from points.services import adjust_points, expire_points, send_expiry_reminders
from points.services.freezing import freeze_member
from tests.conftest import at, definition, give_return, summary

pytestmark = pytest.mark.django_db


def give(member, points, staff, when, **kwargs):
    return adjust_points(
        member=member, points=points, reason="Goodwill", by=staff, now=when, **kwargs
    )


def expiries(member):
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry").values_list("cutoff", "points")
    )


# P4


def test_P4_returns_in_parts_never_reverse_more_than_the_purchase_awarded(member, buy):
    """P4: rounded-up parts are capped, so all returns of a purchase reverse at most its points."""
    # given: 2 points for 2.00 euros
    bought = buy(member, "2.00")
    # when: three returns of 0.50 (each 0.5 points, rounded up)
    for n in range(3):
        give_return(member, bought, "0.50", external_id=f"R-PART-{n}")
    # then: the 2 points are taken back, not 3
    assert (summary(member)["available"], summary(member)["lifetime"]) == (0, 0)


def test_P4_a_return_counts_toward_the_tier_as_its_purchase_did(member, buy):
    """P4: a return reverses the points as they were awarded, not as the definition counts today."""
    purchase = definition("purchase-points")
    purchase.counts_toward_tier = False
    purchase.save()
    bought = buy(member, "100")  # 100 points, not tier-counting
    purchase.counts_toward_tier = True
    purchase.save()
    give_return(member, bought, "50")
    assert (summary(member)["available"], summary(member)["lifetime"]) == (50, 0)


# P6


def test_P6_a_negative_adjustment_may_take_the_available_balance_to_exactly_zero(member, staff):
    """P6: removing every available point is allowed (only below zero is refused)."""
    adjust_points(member=member, points=300, reason="Damaged parcel", by=staff)
    adjust_points(member=member, points=-300, reason="Given twice", by=staff)
    assert summary(member)["available"] == 0


def test_P6_a_tier_counting_removal_may_not_take_lifetime_points_below_zero(member, staff):
    """P6 (rules.md): a negative tier-counting adjustment never takes lifetime points below zero."""
    adjust_points(member=member, points=500, reason="Damaged parcel", by=staff)  # not counting
    with pytest.raises(ValidationError, match="Cannot remove 300 tier points"):
        adjust_points(
            member=member,
            points=-300,
            reason="Typo",
            by=staff,
            definition=definition("goodwill-tier-points"),
        )
    assert (summary(member)["available"], summary(member)["lifetime"]) == (500, 0)


# E1, E4, freeze


def test_E1_a_cutoff_on_the_starts_on_day_counts(make_member, staff):
    """E1: only cutoffs on or after starts_on count; one on that very day does."""
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 1, 31)
    policy.save()
    member = make_member(joined_at=at("2026-01-01"))
    give(member, 100, staff, at("2026-01-10"))
    expire_points(now=at("2026-02-01"))
    assert expiries(member) == [(date(2026, 1, 31), -100)]
    assert summary(member, now=at("2026-02-01"))["available"] == 0


def test_E4_members_are_reminded_reminder_days_before_the_cutoff(make_member, staff, monthly):
    """E4: reminder_days 14: the reminder of 31 March is on 17 March, as the policy page says."""
    assert expiry_impact(monthly, date(2026, 3, 1))["reminded_on"] == date(2026, 3, 17)
    member = make_member(joined_at=at("2026-01-01"))
    give(member, 100, staff, at("2026-03-01"))
    expire_points(now=at("2026-03-16"))  # the cutoffs of January and February ran
    assert send_expiry_reminders(now=at("2026-03-16")) == 0
    assert send_expiry_reminders(now=at("2026-03-17")) == 1
    reminder = Notification.objects.get(member=member, kind="expiry_reminder")
    assert (reminder.cutoff, reminder.points) == (date(2026, 3, 31), 100)


def test_freeze_through_a_cutoff_day_skips_that_cutoff(make_member, staff, monthly):
    """Freeze: a member frozen until a cutoff day keeps the points that cutoff would take."""
    member = make_member(joined_at=at("2026-01-01"))
    give(member, 100, staff, at("2026-01-10"))
    freeze_member(
        member=member, until=date(2026, 1, 31), reason="Illness", by=staff, now=at("2026-01-20")
    )
    expire_points(now=at("2026-02-01"))
    assert expiries(member) == []
    assert summary(member, now=at("2026-02-01"))["available"] == 100


# Member 360


def test_member_as_of_the_moment_of_an_entry_includes_it(member, staff):
    """Member 360: member_as_of(at) counts the entries issued at `at` itself."""
    entry = give(member, 250, staff, at("2026-03-05"))
    assert member_as_of(member, entry.issued_at)["available"] == 250
