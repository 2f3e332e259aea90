"""rewards 0012: the redemptions made before redemptions kept their reward's name and
whether they took a unit get both as best known: the reward's name today, and a unit
taken when the reward has a stock today."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BEFORE = [("rewards", "0011_bounds_in_words")]
AFTER = [("rewards", "0012_redemption_keeps_name_and_unit")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def latest_after():
    """The database as every other test expects it, whatever this one left."""
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


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
