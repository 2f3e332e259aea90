"""member_as_of (DESIGN.md, "Member 360"): the member as points_summary showed them at
any past moment, rebuilt from the ledger and the tier history."""

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from loyalty_site.demo import load_programme
from members.services import enroll_member, merge_members
from points.models import Campaign, ExpiryPolicy, PointDefinition
from points.resources import read_transactions
from points.selectors import member_as_of, points_summary
from points.services import (
    adjust_points,
    expire_points,
    import_transactions,
    record_purchase,
    record_return,
)
from rewards.models import Reward
from rewards.services import cancel_redemption, redeem
from tests.conftest import at, summary
from tiers.models import DegradationPolicy
from tiers.services import degrade_inactive_members

START = at("2023-01-01", hour=9)
MERGEABLE = 3  # accounts of the same customer that a history may merge in

steps = st.lists(
    st.tuples(
        # hours since the step before: often within days, sometimes over a month
        st.one_of(st.integers(1, 72), st.integers(24, 24 * 45)),
        st.one_of(
            st.tuples(st.just("purchase"), st.integers(100, 500_000)),  # cents
            st.tuples(st.just("return"), st.integers(0, 50), st.integers(1, 100)),
            st.tuples(st.just("adjust"), st.integers(-800, 1500), st.booleans()),
            st.tuples(st.just("redeem"), st.sampled_from([150, 600, 2500])),
            st.tuples(st.just("cancel"), st.integers(0, 20)),
            st.tuples(st.just("merge")),
        ),
    ),
    min_size=6,
    max_size=30,
)


class TestMemberAsOf(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=steps)
    def test_member_as_of_equals_what_points_summary_said_after_every_step(self, steps):
        # given: the seed tiers, purchase points pending for 10 days, quarterly expiry
        # (Bronze and Silver points expire), degradation after 30 days without a purchase
        load_programme()
        Campaign.objects.all().delete()
        PointDefinition.objects.filter(handle="purchase-points").update(accrue_delay_days=10)
        ExpiryPolicy.objects.update_or_create(
            pk=1, defaults={"cycle": "quarterly", "starts_on": START.date(), "reminder_days": 0}
        )
        DegradationPolicy.objects.update_or_create(
            pk=1, defaults={"enabled": True, "inactivity_days": 30, "levels_per_step": 1}
        )
        staff = get_user_model().objects.create_user("agent", is_staff=True)
        rewards = {
            cost: Reward.objects.create(name=f"Reward {cost}", points_cost=cost)
            for cost in (150, 600, 2500)
        }
        member = enroll_member(external_id="H-1", email="h1@example.com", joined_at=START)
        # Other accounts of the same customer, each with a purchase, pending or not.
        others = []
        for i in range(MERGEABLE):
            other = enroll_member(
                external_id=f"H-OLD-{i}", email=f"old{i}@example.com", joined_at=START
            )
            record_purchase(
                member=other,
                amount=Decimal(400 * (i + 1)),
                occurred_at=START + timedelta(minutes=i + 1),
                external_id=f"O-{i}",
            )
            others.append(other)
        purchases, redemptions, said = [], [], []
        when = START + timedelta(minutes=10)

        # when: a random history, the nightly jobs running on time before each step
        for n, (hours, (op, *args)) in enumerate(steps):
            when += timedelta(hours=hours)
            expire_points(now=when)
            degrade_inactive_members(now=when)
            try:
                if op == "purchase":
                    purchases.append(
                        record_purchase(
                            member=member,
                            amount=Decimal(args[0]) / 100,
                            occurred_at=when,
                            external_id=f"P-{n}",
                        )
                    )
                elif op == "return" and purchases:
                    original = purchases[args[0] % len(purchases)]
                    amount = max(
                        (original.amount * args[1] / 100).quantize(Decimal("0.01")),
                        Decimal("0.01"),
                    )
                    record_return(
                        member=member,
                        amount=amount,
                        occurred_at=when,
                        external_id=f"R-{n}",
                        original_external_id=original.external_id,
                    )
                elif op == "adjust" and args[0]:
                    handle = "goodwill-tier-points" if args[1] else "manual-adjustment"
                    adjust_points(
                        member=member,
                        points=args[0],
                        reason="property test",
                        by=staff,
                        definition=PointDefinition.objects.get(handle=handle),
                        now=when,
                    )
                elif op == "redeem":
                    redemptions.append(redeem(member=member, reward=rewards[args[0]], now=when))
                elif op == "cancel" and redemptions:
                    redemption = redemptions.pop(args[0] % len(redemptions))
                    cancel_redemption(redemption=redemption, reason="test", now=when)
                elif op == "merge" and others:
                    merge_members(
                        survivor=member, duplicate=others.pop(), by=staff, reason="test", now=when
                    )
            except ValidationError:
                pass  # a rule refused the step (too few points, too much returned): no change
            said.append((when, points_summary(member, now=when)))

        # then: at every step's moment, member_as_of says what points_summary said then
        for moment, summary_then in said:
            assert member_as_of(member, moment) == summary_then, moment


pytestmark = pytest.mark.django_db


def test_X3_as_of_before_joining_is_the_entry_tier_with_no_points(member, buy):
    buy(member, "1500", when=at("2026-03-02"))

    figures = member_as_of(member, at("2020-01-01"))

    assert (figures["available"], figures["pending"], figures["lifetime"]) == (0, 0, 0)
    assert figures["qualified_tier"].code == figures["effective_tier"].code == "bronze"
    assert figures["points_to_next_tier"] == 1000


def test_X3_as_of_counts_a_purchase_imported_late_from_the_day_it_was_made(member, buy):
    # given: a purchase on 2 March, then a file brings one made on 1 March
    buy(member, "500", when=at("2026-03-02"))
    header = "external_id,member,kind,amount,occurred_at,channel,store,original_external_id\n"
    line = f"T-LATE,{member.external_id},purchase,600,2026-03-01T10:00:00+01:00,pos,,\n"
    rows, errors = read_transactions(io.BytesIO((header + line).encode()))
    import_transactions(rows, errors=errors)

    # when / then: as of the end of 1 March the member had its points already, and
    # reached Silver with the purchase of 2 March
    first = member_as_of(member, at("2026-03-01", hour=23))
    assert first["lifetime"] == 600 and first["effective_tier"].code == "bronze"
    second = member_as_of(member, at("2026-03-02", hour=23))
    assert second["lifetime"] == 1100 and second["effective_tier"].code == "silver"
    assert member_as_of(member, at("2030-01-01")) == summary(member)


def test_X3_as_of_a_degraded_member_is_as_many_tiers_below_as_history_says(
    make_member, buy, degradation
):
    # given: Silver on 1 March 2026, 90 days without a purchase
    member = make_member(joined_at=at("2026-01-01"))
    buy(member, "1500", when=at("2026-03-01"))
    degrade_inactive_members(now=at("2026-06-01"))

    # when / then: Silver qualified, Bronze effective from the run on
    before, after = member_as_of(member, at("2026-05-31")), member_as_of(member, at("2026-06-02"))
    assert before["effective_tier"].code == "silver"
    assert after["qualified_tier"].code == "silver" and after["effective_tier"].code == "bronze"
    assert after == points_summary(member, now=at("2026-06-02"))


def test_X3_as_of_sees_expiry_from_the_end_of_its_cutoff_day(member, staff):
    # given: 300 points, monthly expiry processed for 31 March
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", date(2026, 3, 1)
    policy.save()
    adjust_points(member=member, points=300, reason="Welcome", by=staff, now=at("2026-03-05"))
    expire_points(now=at("2026-04-01"))

    # when / then
    assert member_as_of(member, at("2026-03-31", hour=23))["available"] == 300
    assert member_as_of(member, at("2026-04-01", hour=1))["available"] == 0


@pytest.mark.django_db
def test_as_of_a_running_status_match_gives_the_granted_tier(make_member, staff):
    from django.utils import timezone

    from tiers.models import Tier
    from tiers.services import grant_status

    # given a Bronze member matched to Gold for 60 days
    member = make_member()
    until = timezone.localdate() + timedelta(days=60)
    gold = Tier.objects.get(code="gold")
    grant_status(member=member, tier=gold, until=until, reason="Competitor card", by=staff)

    # then as of now the member is Gold, as the summary says, and qualified for Bronze
    now = timezone.now()
    figures = member_as_of(member, now)
    assert (figures["effective_tier"].code, figures["qualified_tier"].code) == ("gold", "bronze")
    assert figures == points_summary(member, now=now)


@pytest.mark.django_db
def test_as_of_now_after_a_late_purchase_restored_a_degraded_member_is_the_summary(
    make_member, degradation
):
    from django.utils import timezone

    # given Silver, degraded to Bronze on 15 Apr; then a purchase of 10 Apr sent late
    member = make_member(joined_at=at("2026-01-01"))
    record_purchase(
        member=member, amount=Decimal("1500"), occurred_at=at("2026-01-02"), external_id="P-1"
    )
    degrade_inactive_members(now=at("2026-04-15"))
    record_purchase(
        member=member,
        amount=Decimal("10"),
        occurred_at=at("2026-04-10"),
        external_id="P-2",
        now=at("2026-04-16"),
    )

    # then as of now: Silver again (restored), as the summary says
    now = timezone.now()
    assert member_as_of(member, now)["effective_tier"].code == "silver"
    assert member_as_of(member, now) == points_summary(member, now=now)
