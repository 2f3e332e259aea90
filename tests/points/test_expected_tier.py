"""E3, E4: the tier a member will hold at a coming cutoff is worked out twice, by the
same rules: in Python from one member row (the member page and the API's
`next_expiry`, no query) and in SQL for every member at once (the reminders, the
preview and the dashboard). Both must give every member the same tier, or a member
would be told one thing and reminded of another."""

import random
from datetime import date, timedelta

import pytest

from core.days import end_of
from members.models import Member
from points.expiry_selectors import expected_tier_at, tier_expected_at
from points.selectors import programme
from tiers.models import DegradationPolicy
from tiers.selectors import Ranking, inactive_since

pytestmark = pytest.mark.django_db

CUTOFF = date(2026, 3, 31)
EVE = end_of(CUTOFF - timedelta(days=1))


def member_states(tiers, rng: random.Random, count: int):
    """Member rows in every kind of state a cutoff can find them in: each tier qualified
    and held, degraded, matched above their tier until before, on the eve of or after
    the cutoff, frozen over part of their inactivity, inactive for a few days to a year."""
    ranked = sorted(tiers.values(), key=lambda tier: tier.threshold)
    for i in range(count):
        q = rng.randrange(len(ranked))
        effective = ranked[rng.randrange(q + 1)]  # the qualified tier or degraded below it
        granted = until = None
        if rng.random() < 0.4 and q + 1 < len(ranked):
            granted = ranked[rng.randrange(q + 1, len(ranked))]
            until = CUTOFF + timedelta(days=rng.choice([-20, -2, -1, 0, 1, 30]))
            effective = granted
        since = EVE - timedelta(days=rng.choice([5, 60, 89, 90, 91, 120, 179, 181, 200, 365]))
        frozen = None
        if rng.random() < 0.25:
            frozen = end_of((EVE - timedelta(days=rng.choice([10, 40, 100]))).date())
        yield Member(
            external_id=f"M-X{i:04d}",
            email=f"x{i}@example.com",
            joined_at=since - timedelta(days=30),
            last_purchase_at=since,
            qualified_tier=ranked[q],
            effective_tier=effective,
            best_tier=ranked[max(q, ranked.index(effective))],
            granted_tier=granted,
            granted_until=until,
            frozen_until=frozen,
        )


@pytest.mark.parametrize(("enabled", "levels"), [(True, 1), (True, 2), (False, 1)])
def test_E4_the_reminders_forecast_each_member_s_tier_as_the_member_page_does(
    tiers, enabled, levels
):
    # given: members in every state, degradation on (one or two levels a step) or off
    policy = DegradationPolicy.current()
    policy.enabled, policy.levels_per_step = enabled, levels
    policy.save()
    Member.objects.bulk_create(member_states(tiers, random.Random(levels), 400))

    # when: both forecasts of the tier at the end of 31 March
    in_sql = dict(
        Member.objects.annotate(
            inactive_since=inactive_since(),
            expected=expected_tier_at(CUTOFF, Ranking(), DegradationPolicy.current()),
        ).values_list("pk", "expected")
    )
    plan = programme()
    in_python = {m.pk: tier_expected_at(m, plan, CUTOFF) for m in Member.objects.all()}

    # then: the same for every member, and the states varied enough to move some
    assert in_sql == in_python
    moved = sum(in_sql[m.pk] != m.effective_tier_id for m in Member.objects.all())
    assert moved > 20
