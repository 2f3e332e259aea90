"""The rewards' data migrations, on redemptions made before them:
- 0005-0006: each gets a voucher code (unique, of the alphabet), valid 90 days from the
  day of the upgrade;
- 0012: each keeps its reward's name and whether it took a unit of stock, as best
  known: the reward's name today, and a unit taken when the reward has a stock today;
  and those the release before wrote meanwhile, once `finish_upgrade` runs."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from rewards.codes import is_code
from rewards.models import Redemption
from tests.migrations import latest_after, migrate, migrate_to_latest  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]


def redeemed(apps, tiers, reward, **fields):
    """A redemption of `reward` for one member, as the models at `apps` write it."""
    Member, LedgerEntry = (
        apps.get_model("members", "Member"),
        apps.get_model("points", "LedgerEntry"),
    )
    bronze = tiers["bronze"].pk
    member, _ = Member.objects.get_or_create(
        external_id="M-OLD",
        defaults=dict(
            email="old@example.com",
            qualified_tier_id=bronze,
            effective_tier_id=bronze,
            best_tier_id=bronze,
        ),
    )
    now = timezone.now()
    entry = LedgerEntry.objects.create(
        member=member,
        kind="redemption",
        points=-reward.points_cost,
        issued_at=now,
        accrue_at=now,
        reason=f"Redeemed {reward.name}",  # as the redemption's ledger line reads
        counts_toward_tier=False,
        redeemable=True,
    )
    apps.get_model("rewards", "Redemption").objects.create(
        member=member, reward=reward, points=reward.points_cost, entry=entry, **fields
    )


def test_existing_redemptions_get_a_unique_code_valid_90_days_from_the_upgrade(tiers):
    # given: three redemptions made before vouchers, one of them a year ago
    old = migrate([("rewards", "0004_constraint_messages")])
    coffee = old.get_model("rewards", "Reward").objects.create(name="Coffee", points_cost=150)
    for n in range(3):
        ago = timedelta(days=365 * (n == 0))
        redeemed(old, tiers, coffee, redeemed_at=timezone.now() - ago)

    # when
    new = migrate([("rewards", "0006_voucher_codes_required")])

    # then
    codes = list(new.get_model("rewards", "Redemption").objects.values_list("code", "valid_until"))
    assert len({code for code, _ in codes}) == 3
    assert all(is_code(code) for code, _ in codes)
    assert {until for _, until in codes} == {timezone.localdate() + timedelta(days=90)}


def test_existing_redemptions_keep_their_reward_s_name_and_a_unit_where_it_has_a_stock(tiers):
    # given: a redemption of an unlimited coffee, since renamed, and one of a tote bag
    # with a stock
    old = migrate([("rewards", "0011_bounds_in_words")])
    Reward = old.get_model("rewards", "Reward")
    for name, stock in (("Coffee voucher", None), ("Tote bag", 10)):
        reward = Reward.objects.create(name=name, points_cost=150, stock=stock)
        redeemed(old, tiers, reward, valid_until=timezone.localdate())
    Reward.objects.filter(name="Coffee voucher").update(name="Large coffee voucher")

    # when
    new = migrate([("rewards", "0012_redemption_keeps_name_and_unit")])

    # then: the name it was redeemed under (its ledger line's), not today's
    kept = new.get_model("rewards", "Redemption").objects.values_list("reward_name", "took_unit")
    assert sorted(kept) == [("Coffee voucher", False), ("Tote bag", True)]


def test_the_release_before_still_writes_redemptions_once_the_columns_are_added(tiers):
    """Found by an upgrade audit: between the migrate and their restart, the web and
    workers of the release before (which know nothing of the new columns) failed every
    redemption on their NOT NULL."""
    # given: the database migrated, the old code's models still running
    old = migrate([("rewards", "0011_bounds_in_words")])
    coffee = old.get_model("rewards", "Reward").objects.create(name="Coffee", points_cost=150)
    new = migrate([("rewards", "0012_redemption_keeps_name_and_unit")])

    # when: the old code redeems
    redeemed(old, tiers, coffee, valid_until=timezone.localdate())

    # then: written, with the columns' defaults
    kept = new.get_model("rewards", "Redemption").objects.values_list("reward_name", "took_unit")
    assert list(kept) == [("", False)]


def test_finishing_the_upgrade_names_what_the_release_before_redeemed_meanwhile(tiers):
    """Found by a review: the redemptions the web of the release before wrote between
    the migrate and its restart kept an empty name (" voucher" at the till) and gave no
    unit back on cancellation."""
    # given: the release before redeems a tote bag with a stock, once migrated
    old = migrate([("rewards", "0011_bounds_in_words")])
    bag = old.get_model("rewards", "Reward").objects.create(
        name="Tote bag", points_cost=150, stock=10
    )
    migrate([("rewards", "0012_redemption_keeps_name_and_unit")])
    redeemed(old, tiers, bag, valid_until=timezone.localdate())
    migrate_to_latest()  # the models of today
    out = io.StringIO()

    # when: every process runs the new release
    call_command("finish_upgrade", stdout=out)
    call_command("finish_upgrade", stdout=out)

    # then: named from its ledger line, holding its unit; the second run finds nothing
    assert list(Redemption.objects.values_list("reward_name", "took_unit")) == [("Tote bag", True)]
    assert [line for line in out.getvalue().splitlines() if line.startswith("redemptions")] == [
        "redemptions named=1",
        "redemptions named=0",
    ]
