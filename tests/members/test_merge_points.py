"""Merging duplicate accounts (DESIGN.md, "Member 360", Merge): the duplicate's
points move by ledger entries, the survivor is requalified, the preview gives
what the merge gives."""

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from members.models import TierChange
from points.models import (
    LedgerEntry,
    PointDefinition,
)
from points.services import (
    adjust_points,
    merge_preview,
)
from tests.conftest import (
    at,
    give_return,
    ledger_state,
    summary,
)
from tests.members.merging import fresh, merge

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending_purchases():
    """Purchase points become available 30 days after the purchase (P5)."""
    PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=30)


def test_M2_merge_moves_available_pending_and_lifetime_points_by_merge_entries(
    keep, old, buy, staff, pending_purchases
):
    # given: the old account has spent-down available points and points still pending
    buy(old, "400", when=at("2026-03-02"))  # available by now
    buy(old, "200", when=timezone.now() - timedelta(days=2))  # pending for 28 more days
    adjust_points(member=old, points=-100, reason="Goodwill taken back", by=staff)
    buy(keep, "300", when=at("2026-04-01"))
    now = timezone.now()
    old_entries = list(LedgerEntry.objects.filter(member=old).values_list("pk", "points"))
    before = summary(old, now=now), summary(keep, now=now)

    # when
    survivor = merge(keep, old, staff, now=now)

    # then: the survivor holds the points of both, pending still pending
    after = summary(survivor, now=now)
    assert after["available"] == before[0]["available"] + before[1]["available"] == 600
    assert after["pending"] == before[0]["pending"] + before[1]["pending"] == 200
    assert after["lifetime"] == before[0]["lifetime"] + before[1]["lifetime"] == 900
    # and the duplicate holds none
    closed = summary(old, now=now)
    assert (closed["available"], closed["pending"], closed["lifetime"]) == (0, 0, 0)
    # by "merge" entries out of one and into the other; nothing edited
    merges = LedgerEntry.objects.filter(kind="merge")
    moved_out = merges.filter(member=old).values_list("points", flat=True)
    moved_in = merges.filter(member=keep).values_list("points", flat=True)
    assert moved_out and sorted(-points for points in moved_out) == sorted(moved_in)
    entries = set(LedgerEntry.objects.filter(member=old).values_list("pk", "points"))
    assert set(old_entries) <= entries
    call_command("check_ledger")


def test_pending_points_stay_pending_until_their_date_on_the_survivor(
    keep, old, buy, staff, pending_purchases
):
    # given: 200 points of the old account become available in 28 days
    now = timezone.now()
    buy(old, "200", when=now - timedelta(days=2))

    # when
    merge(keep, old, staff, now=now)

    # then: pending on the survivor until the same moment, then available
    entry = LedgerEntry.objects.get(member=keep, kind="merge")
    assert entry.accrue_at == now - timedelta(days=2) + timedelta(days=30)
    assert summary(keep, now=now + timedelta(days=27))["pending"] == 200
    later = summary(keep, now=now + timedelta(days=29))
    assert (later["available"], later["pending"]) == (200, 0)
    assert summary(old, now=now + timedelta(days=29))["available"] == 0


def test_the_survivor_is_requalified_and_a_tier_neither_reached_pays_its_bonus_once(
    keep, old, buy, staff
):
    # given: two Silver accounts (each got the Silver bonus of 100)
    buy(keep, "1800")
    buy(old, "1500")

    # when: together 3,300 lifetime points
    survivor = merge(keep, old, staff)

    # then: Gold, with the Gold bonus (250) once, and the history says why
    assert survivor.qualified_tier.code == survivor.effective_tier.code == "gold"
    assert summary(survivor)["available"] == 1800 + 100 + 1500 + 100 + 250
    assert LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").count() == 1
    change = TierChange.objects.filter(member=keep).first()
    assert (change.reason, change.to_tier.code, change.created_by) == ("merge", "gold", staff)
    # and the duplicate is back in the entry tier, with no points
    closed = fresh(old)
    assert closed.qualified_tier.code == "bronze" and closed.lifetime_points == 0
    call_command("check_ledger")


def test_the_highest_tier_ever_reached_is_the_higher_of_both_so_no_bonus_for_it(
    keep, old, buy, staff
):
    # given: the old account reached Gold once, then a return took it back to Silver
    purchase = buy(old, "3000")
    give_return(old, purchase, "1500")
    assert fresh(old).qualified_tier.code == "silver" and fresh(old).best_tier.code == "gold"
    buy(keep, "1600")  # Silver

    # when: together Gold again
    survivor = merge(keep, old, staff)

    # then: Gold, but no Gold bonus: the customer had it before
    assert survivor.qualified_tier.code == "gold" and survivor.best_tier.code == "gold"
    assert not LedgerEntry.objects.filter(member=keep, reason="Welcome to Gold").exists()


def test_the_survivors_best_tier_rises_to_the_duplicates_even_without_a_tier_change(
    keep, old, buy, staff
):
    # given: the old account reached Gold once and fell back to Bronze
    purchase = buy(old, "3000")
    give_return(old, purchase, "3000")

    # when
    survivor = merge(keep, old, staff)

    # then: still Bronze, but Gold was reached: reaching it again pays no bonus
    assert survivor.qualified_tier.code == "bronze" and survivor.best_tier.code == "gold"


def test_the_last_purchase_is_the_later_of_both(keep, old, buy, staff):
    # given
    buy(keep, "10", when=at("2026-02-01"))
    buy(old, "10", when=at("2026-05-01"))

    # when / then
    assert merge(keep, old, staff).last_purchase_at == at("2026-05-01")


def test_the_last_purchase_of_a_survivor_who_never_bought_is_the_duplicates(keep, old, buy, staff):
    buy(old, "10", when=at("2026-05-01"))
    assert merge(keep, old, staff).last_purchase_at == at("2026-05-01")


def test_a_merge_drops_the_duplicates_unsent_expiry_reminders(keep, old, staff):
    # given: an expiry reminder waiting for the old account's points
    from members.models import Notification

    Notification.objects.create(member=old, kind="expiry_reminder", cutoff=date(2026, 12, 31))

    # when
    merge(keep, old, staff)

    # then: no message about points that are no longer there
    assert not Notification.objects.filter(member=old, kind="expiry_reminder").exists()


# What the confirmation page reads


def test_the_preview_shows_the_result_the_merge_gives_and_writes_nothing(keep, old, buy, staff):
    # given
    buy(keep, "1800")
    buy(old, "1500")
    before = ledger_state()

    # when
    preview = merge_preview(survivor=keep, duplicate=old)

    # then: nothing written, and the figures are those of the merge
    assert ledger_state() == before
    merged = summary(merge(keep, old, staff))
    after = preview["after"]
    assert (after["available"], after["pending"], after["lifetime"]) == (
        merged["available"],
        merged["pending"],
        merged["lifetime"],
    )
    assert after["qualified_tier"].code == "gold" and preview["bonus"] == 250
    assert preview["moved"] == {"available": 1600, "pending": 0, "lifetime": 1500}
