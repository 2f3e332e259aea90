"""rewards 0012: the redemptions made before redemptions kept their reward's name and
whether they took a unit get both as best known: the reward's name today, and a unit
taken when the reward has a stock today."""

import pytest
from django.utils import timezone

from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]

BEFORE = [("rewards", "0011_bounds_in_words")]
AFTER = [("rewards", "0012_redemption_keeps_name_and_unit")]


def test_existing_redemptions_keep_their_reward_s_name_and_a_unit_where_it_has_a_stock(tiers):
    # given: a redemption of an unlimited coffee and one of a tote bag with a stock
    old = migrate(BEFORE)
    Member, Reward = old.get_model("members", "Member"), old.get_model("rewards", "Reward")
    LedgerEntry = old.get_model("points", "LedgerEntry")
    Redemption = old.get_model("rewards", "Redemption")
    bronze = tiers["bronze"].pk
    member = Member.objects.create(
        external_id="M-OLD",
        email="old@example.com",
        qualified_tier_id=bronze,
        effective_tier_id=bronze,
        best_tier_id=bronze,
    )
    now = timezone.now()
    for name, stock in (("Coffee voucher", None), ("Tote bag", 10)):
        reward = Reward.objects.create(name=name, points_cost=150, stock=stock)
        entry = LedgerEntry.objects.create(
            member=member,
            kind="redemption",
            points=-150,
            issued_at=now,
            accrue_at=now,
            reason="Redeemed",
            counts_toward_tier=False,
            redeemable=True,
        )
        Redemption.objects.create(
            member=member, reward=reward, points=150, entry=entry, valid_until=now.date()
        )

    # when
    new = migrate(AFTER)

    # then
    kept = new.get_model("rewards", "Redemption").objects.values_list("reward_name", "took_unit")
    assert sorted(kept) == [("Coffee voucher", False), ("Tote bag", True)]
