"""rewards 0005-0006: the redemptions made before vouchers existed get a code each
(unique, of the alphabet) and a validity of 90 days from the day of the upgrade."""

from datetime import timedelta

import pytest
from django.utils import timezone

from rewards.codes import is_code
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("latest_after"),
]

BEFORE = [("rewards", "0004_constraint_messages")]
AFTER = [("rewards", "0006_voucher_codes_required")]


def test_existing_redemptions_get_a_unique_code_valid_90_days_from_the_upgrade(tiers):
    # given: three redemptions made before vouchers, one of them a year ago
    old = migrate(BEFORE)
    Member, Reward = old.get_model("members", "Member"), old.get_model("rewards", "Reward")
    LedgerEntry = old.get_model("points", "LedgerEntry")
    Redemption = old.get_model("rewards", "Redemption")
    member = Member.objects.create(
        external_id="M-OLD",
        email="old@example.com",
        qualified_tier_id=tiers["bronze"].pk,
        effective_tier_id=tiers["bronze"].pk,
        best_tier_id=tiers["bronze"].pk,
    )
    reward = Reward.objects.create(name="Coffee voucher", points_cost=150)
    now = timezone.now()
    for n in range(3):
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
            member=member,
            reward=reward,
            points=150,
            entry=entry,
            redeemed_at=now - timedelta(days=365 * (n == 0)),
        )

    # when
    new = migrate(AFTER)

    # then
    codes = list(new.get_model("rewards", "Redemption").objects.values_list("code", "valid_until"))
    assert len({code for code, _ in codes}) == 3
    assert all(is_code(code) for code, _ in codes)
    assert {until for _, until in codes} == {timezone.localdate() + timedelta(days=90)}
