"""Freeze: degradation and expiry skip a member until a date; inactivity counts again
from the freeze's end; previews say who is skipped and why."""

import io
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from members.models import Member
from points.expiry_selectors import expiry_skipped
from points.models import ExpiryPolicy, LedgerEntry
from points.services import adjust_points, expire_points
from points.services.freezing import freeze_member, unfreeze_member
from tests.conftest import at, summary
from tiers.degradation_previews import degradation_skipped
from tiers.selectors import Ranking, drop_time, next_degradation
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db

START = at("2026-01-01")


def tiers_of(member):
    m = Member.objects.get(pk=member.pk)
    return m.qualified_tier.code, m.effective_tier.code


def freeze(member, staff, until, now, reason="Hospital stay"):
    return freeze_member(member=member, until=until, reason=reason, by=staff, now=now)


@pytest.fixture
def gold(make_member, buy):
    member = make_member(joined_at=START - timedelta(days=1))
    buy(member, "3000", when=START, external_id="P-GOLD")
    return member


def test_a_frozen_member_is_not_degraded(gold, staff, degradation):
    # given: frozen on day 80 until 30 April
    freeze(gold, staff, date(2026, 4, 30), now=START + timedelta(days=80))
    # when: day 100, 90 days without a purchase
    assert degrade_inactive_members(now=START + timedelta(days=100)) == 0
    # then
    assert tiers_of(gold) == ("gold", "gold")


def test_inactivity_counts_again_from_the_end_of_a_freeze(gold, staff, degradation):
    # given: frozen until 30 April (the freeze ends at midnight, 1 May)
    freeze(gold, staff, date(2026, 4, 30), now=START + timedelta(days=80))
    # then: 90 days after 1 May, the day the clock starts again (counted as a purchase's
    # day is), not from the last purchase: the member is told 30 Jul, and the run
    # after that day moves them
    gold.refresh_from_db()
    when, _ = next_degradation(gold, degradation, Ranking(), START + timedelta(days=80))
    assert drop_time(when, START + timedelta(days=80)) == "on 30 Jul 2026"
    degrade_inactive_members(now=at("2026-07-30", 23))
    assert tiers_of(gold) == ("gold", "gold")
    degrade_inactive_members(now=at("2026-07-31", 3))
    assert tiers_of(gold) == ("gold", "silver")


def test_G7_the_degradation_preview_lists_frozen_members_with_the_reason(gold, staff, degradation):
    freeze(gold, staff, date(2026, 4, 30), now=START + timedelta(days=80))
    count, rows = degradation_skipped(degradation, Ranking(), START + timedelta(days=100), limit=5)
    assert count == 1
    assert rows[0] == (gold, "frozen until 30 Apr 2026: Hospital stay")
    out = io.StringIO()
    call_command("preview_degradation", "--date", "2026-04-11", stdout=out)
    assert f"{gold.external_id} (Gold): frozen until 30 Apr 2026: Hospital stay" in out.getvalue()


@pytest.fixture
def monthly(db):
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 3, 1)
    policy.save()
    return policy


@pytest.fixture
def bronze_with_points(make_member, staff):
    member = make_member(joined_at=START)
    staff.is_superuser = True
    adjust_points(member=member, points=800, reason="Welcome", by=staff, now=at("2026-03-01"))
    return member


def test_an_expiry_cutoff_during_a_freeze_is_skipped_for_the_member(
    bronze_with_points, staff, monthly
):
    # given: frozen from 5 March to 15 April
    freeze(bronze_with_points, staff, date(2026, 4, 15), now=at("2026-03-05"))
    # when: the 31 March cutoff runs
    expire_points(now=at("2026-04-01", 1))
    # then: nothing expires; the points wait for the next cutoff after the freeze
    assert not LedgerEntry.objects.filter(member=bronze_with_points, kind="expiry").exists()
    assert summary(bronze_with_points, now=at("2026-04-10"))["available"] == 800
    expire_points(now=at("2026-05-01", 1))
    assert list(
        LedgerEntry.objects.filter(member=bronze_with_points, kind="expiry").values_list(
            "cutoff", "points"
        )
    ) == [(date(2026, 4, 30), -800)]


def test_G7_the_expiry_preview_lists_frozen_members_with_the_reason(
    bronze_with_points, staff, monthly
):
    freeze(bronze_with_points, staff, date(2026, 4, 15), now=at("2026-03-05"))
    count, rows = expiry_skipped(date(2026, 3, 31), limit=5)
    assert count == 1
    assert rows[0] == (bronze_with_points, 800, "frozen until 15 Apr 2026: Hospital stay")
    out = io.StringIO()
    call_command("preview_expiry", "--date", "2026-03-20", stdout=out)
    assert "1 member skipped (frozen over the cutoff)" in out.getvalue()


def test_a_freeze_is_refused_between_a_cutoff_and_its_run(bronze_with_points, staff, monthly):
    with pytest.raises(ValidationError, match="The points expiry of 31 Mar 2026 has not finished"):
        freeze(bronze_with_points, staff, date(2026, 5, 1), now=at("2026-04-01", 0))
    assert Member.objects.get(pk=bronze_with_points.pk).frozen_until is None


def test_a_freeze_needs_a_last_day_within_a_year_and_a_reason(gold, staff):
    with pytest.raises(ValidationError) as refused:
        freeze(gold, staff, date(2025, 12, 1), now=START, reason=" ")
    assert set(refused.value.message_dict) == {"until", "reason"}
    with pytest.raises(ValidationError, match="at most a year"):
        freeze(gold, staff, date(2027, 6, 1), now=START)


def test_ending_a_freeze_restarts_the_clock_now(gold, staff, degradation):
    freeze(gold, staff, date(2026, 6, 30), now=START + timedelta(days=80))
    unfreeze_member(member=gold, by=staff, now=START + timedelta(days=85))
    # 90 days from the end of the freeze end on day 175: the run after that day drops
    degrade_inactive_members(now=START + timedelta(days=175))
    assert tiers_of(gold) == ("gold", "gold")
    degrade_inactive_members(now=START + timedelta(days=176))
    assert tiers_of(gold) == ("gold", "silver")
    with pytest.raises(ValidationError, match="is not frozen"):
        unfreeze_member(member=gold, by=staff, now=START + timedelta(days=176))
