"""A redemption keeps what it was given (found by an audit): the unit of stock it took, or
none when the reward was unlimited (W3, W4, W6), and the reward's name, as it keeps the
voucher's value and validity (W5)."""

# ruff: noqa: F811 - the API fixtures are imported from tests/api/conftest.py

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from rewards.models import Reward
from rewards.services import cancel_redemption, redeem, release_expired_vouchers, use_voucher
from tests.api.conftest import api, client_for, till  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def stock(reward) -> int | None:
    reward.refresh_from_db()
    return reward.stock


# W3, W4, W6: only a unit taken goes back


def test_W4_cancelling_a_redemption_made_while_unlimited_puts_nothing_in_the_stock_set_since(
    rich, catalogue, staff
):
    # given: three coffee vouchers redeemed while the coffee was unlimited, then the
    # marketer limits it to 5
    coffee = catalogue["Coffee voucher"]
    assert coffee.stock is None
    made = [redeem(member=rich, reward=coffee) for _ in range(3)]
    Reward.objects.filter(pk=coffee.pk).update(stock=5)

    # when: the three are cancelled
    for redemption in made:
        cancel_redemption(redemption=redemption, by=staff, reason="Changed her mind")

    # then: the 5 units are still 5, and the points came back
    assert stock(coffee) == 5
    rich.refresh_from_db()
    assert rich.points_balance == 5_000


def test_W6_an_expired_voucher_of_a_reward_then_unlimited_puts_nothing_in_the_stock_set_since(
    rich, catalogue
):
    # given: a coffee voucher redeemed while unlimited; the marketer then withdraws the
    # coffee by setting its stock to 0
    coffee = catalogue["Coffee voucher"]
    redeem(member=rich, reward=coffee)
    Reward.objects.filter(pk=coffee.pk).update(stock=0)

    # when: the nightly job runs after the voucher's last day
    released = release_expired_vouchers(now=timezone.now() + timedelta(days=365))

    # then: the coffee stays withdrawn
    assert released == 0 and stock(coffee) == 0
    with pytest.raises(ValidationError, match="Out of stock"):
        redeem(member=rich, reward=coffee)


def test_W4_a_unit_taken_goes_back_once_the_reward_has_a_stock(rich, catalogue, staff):
    # given: two units left, one taken
    tote = Reward.objects.create(name="Tote bag", points_cost=800, stock=2)
    redemption = redeem(member=rich, reward=tote)
    assert stock(tote) == 1

    # when
    cancel_redemption(redemption=redemption, by=staff)

    # then
    assert stock(tote) == 2


# W5: the voucher keeps the reward's name


def test_W5_a_reward_renamed_does_not_rename_the_vouchers_already_given(rich, catalogue):
    # given: a 5 euro voucher redeemed, then the marketer makes it a 6 euro voucher
    reward = catalogue["5 euro voucher"]
    voucher = redeem(member=rich, reward=reward)
    Reward.objects.filter(pk=reward.pk).update(name="6 euro voucher", voucher_value=Decimal(6))
    use_voucher(code=voucher.code, external_id="RECEIPT-1")

    # when: a till uses it again
    with pytest.raises(ValidationError) as refused:
        use_voucher(code=voucher.code, external_id="RECEIPT-2")

    # then: it is still the 5 euro voucher it was
    assert refused.value.messages[0].startswith("This 5 euro voucher was already used on ")


def test_W5_the_api_names_a_voucher_by_the_reward_s_name_when_redeemed(rich, catalogue, api):
    # given
    reward = catalogue["5 euro voucher"]
    voucher = redeem(member=rich, reward=reward)
    Reward.objects.filter(pk=reward.pk).update(name="6 euro voucher", voucher_value=Decimal(6))

    # when
    body = api.get(f"/api/v1/vouchers/{voucher.code}").json()

    # then
    assert (body["reward_name"], body["value"]) == ("5 euro voucher", "5.00")


def test_W4_the_cancel_page_of_an_unlimited_reward_promises_its_points_not_a_unit(
    rich, catalogue, admin_client
):
    # given: a coffee voucher, the coffee unlimited
    voucher = redeem(member=rich, reward=catalogue["Coffee voucher"])

    # when: an agent opens its cancel page from the member page
    page = admin_client.get(
        reverse("admin:members_member_cancel_redemption", args=[rich.pk, voucher.pk])
    )

    # then
    text = " ".join(re.sub("<[^>]+>", "", page.content.decode()).split())
    assert f"150 points come back to {rich.external_id}, available at once." in text
    assert "stock" not in text
