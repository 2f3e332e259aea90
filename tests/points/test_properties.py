"""Random sequences of writes: after every step the caches equal the ledger (P7) and
the tier is the one the lifetime points qualify for (T1, T2)."""

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from loyalty_site.demo import load_programme
from members.models import Member
from members.services import enroll_member
from points.models import Campaign, PointDefinition
from points.selectors import points_summary
from points.services import adjust_points, award_action, record_purchase, record_return
from tests.conftest import at
from tiers.selectors import Ranking

MEMBERS = 3
who = st.integers(0, MEMBERS - 1)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("purchase"), who, st.integers(1, 400_000)),
        st.tuples(st.just("return"), st.integers(0, 1000), st.integers(1, 100)),
        st.tuples(st.just("action"), who),
        st.tuples(st.just("adjust"), who, st.integers(-3000, 3000), st.booleans()),
        st.tuples(st.just("replay"), who),
    ),
    min_size=1,
    max_size=30,
)


class _Null:
    def write(self, *_):
        pass

    def flush(self):
        pass


class TestLedgerProperties(TestCase):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=steps)
    def test_caches_equal_the_ledger_and_tiers_follow_lifetime_points(self, steps):
        load_programme()
        Campaign.objects.all().delete()
        staff = get_user_model().objects.create_user("agent", is_staff=True)
        members = [
            enroll_member(external_id=f"H-{i}", email=f"h{i}@example.com") for i in range(MEMBERS)
        ]
        purchases = []
        for n, (op, *args) in enumerate(steps):
            when = at("2026-01-01") + timedelta(hours=n)
            if op == "purchase":
                member, cents = members[args[0]], args[1]
                purchases.append(
                    record_purchase(
                        member=member,
                        amount=Decimal(cents) / 100,
                        occurred_at=when,
                        external_id=f"P-{n}",
                    )
                )
            elif op == "return" and purchases:
                original = purchases[args[0] % len(purchases)]
                amount = max(
                    (original.amount * args[1] / 100).quantize(Decimal("0.01")), Decimal("0.01")
                )
                try:
                    record_return(
                        member=original.member,
                        amount=amount,
                        occurred_at=when,
                        external_id=f"R-{n}",
                        original_external_id=original.external_id,
                    )
                except ValidationError as exc:
                    assert "left to return" in str(exc)
            elif op == "action":
                award_action(
                    member=members[args[0]],
                    definition=PointDefinition.objects.get(handle="write-a-review"),
                    occurred_at=when,
                    external_id=f"A-{n}",
                )
            elif op == "adjust":
                member, points, counts = members[args[0]], args[1], args[2]
                handle = "goodwill-tier-points" if counts else "manual-adjustment"
                try:
                    adjust_points(
                        member=member,
                        points=points,
                        reason="property test",
                        by=staff,
                        definition=PointDefinition.objects.get(handle=handle),
                        now=when,
                    )
                except ValidationError:
                    assert points <= 0  # refused: zero, or more than the member has
            elif op == "replay" and purchases:
                txn = purchases[-1]
                assert record_purchase(
                    member=txn.member,
                    amount=txn.amount,
                    occurred_at=txn.occurred_at,
                    external_id=txn.external_id,
                    channel=txn.channel,
                ).skipped

            call_command("check_ledger", stdout=_Null(), stderr=_Null())  # exits 1 if not
            ranking = Ranking()
            for member in Member.objects.all():
                summary = points_summary(member, now=when)
                assert summary["qualified_tier"] == ranking.qualified_for(summary["lifetime"])
                assert summary["effective_tier"] == summary["qualified_tier"]
