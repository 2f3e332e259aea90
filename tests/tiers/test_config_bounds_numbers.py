"""Numbers a marketer types into the programme's settings have upper bounds
(reminders, bonuses, actions, earn rates, campaigns, multipliers, thresholds): a
typo of a few digits is refused beside the field and nothing is saved."""

import io

import pytest
from django.urls import reverse

from members.models import Member
from points.member_rows import read_members
from points.models import Campaign, ExpiryPolicy, PointDefinition
from points.services import import_members
from tests.conftest import at, earned
from tests.tiers.settings_forms import (
    definition_form,
    errors,
    new_tier_form,
    purchase_points,
    purchase_points_form,
    tier_form,
)
from tiers.models import Tier

pytestmark = pytest.mark.django_db


ABSURD = ["999999999999", "99999999999999999999999"]  # past the column; past any integer


# Defect: numbers a marketer types had no upper limit


@pytest.mark.parametrize("cycle", ["never", "monthly"])
@pytest.mark.parametrize("days", ["3651", *ABSURD])
def test_E4_a_reminder_more_than_ten_years_before_a_cutoff_is_refused(
    client, login, tiers, cycle, days
):
    # given
    login("Marketer")
    url = reverse("admin:points_expirypolicy_change", args=[ExpiryPolicy.current().pk])

    # when
    page = client.post(url, {"cycle": cycle, "starts_on": "", "reminder_days": days})

    # then
    assert page.status_code == 200
    assert "reminder_days: At most 3,650 days (ten years)" in errors(page)
    policy = ExpiryPolicy.current()
    assert (policy.cycle, policy.reminder_days) == ("never", 14)


@pytest.mark.parametrize("bonus", ["100001", *ABSURD])
def test_T2_a_welcome_bonus_above_what_one_adjustment_gives_is_refused(client, login, tiers, bonus):
    # given
    login("Marketer")
    gold = Tier.objects.get(code="gold")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[gold.pk]),
        tier_form(gold, upgrade_bonus_points=bonus),
    )

    # then
    assert page.status_code == 200
    # in a marketer's words: no setting's name
    assert (
        "upgrade_bonus_points: A tier-up bonus is at most 100,000 points, as much as one "
        "adjustment may give." in errors(page)
    )
    assert Tier.objects.get(pk=gold.pk).upgrade_bonus_points == 250


def test_T2_a_welcome_bonus_of_the_limit_is_saved(client, login, tiers):
    # given
    login("Marketer")
    gold = Tier.objects.get(code="gold")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[gold.pk]),
        tier_form(gold, upgrade_bonus_points="100000"),
    )

    # then
    assert page.status_code == 302
    assert Tier.objects.get(pk=gold.pk).upgrade_bonus_points == 100_000


@pytest.mark.parametrize("points", ["100001", *ABSURD])
def test_P1_an_action_worth_more_than_one_adjustment_gives_is_refused(client, login, tiers, points):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_pointdefinition_add"), definition_form(points=points))

    # then
    assert page.status_code == 200
    assert (
        "points: An action gives at most 100,000 points, as much as one adjustment may give."
        in errors(page)
    )
    assert not PointDefinition.objects.filter(handle="long-review").exists()


def test_P1_the_limit_of_an_action_follows_the_adjustment_setting(client, login, tiers, settings):
    # given: a programme that allows adjustments of up to 500 points
    settings.MAX_ADJUSTMENT_POINTS = 500
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_pointdefinition_add"), definition_form(points="600"))

    # then
    assert "points: An action gives at most 500 points" in errors(page)
    assert not PointDefinition.objects.filter(handle="long-review").exists()


# Defect: an earn rate had no upper bound (up to 9,999.9999 points per euro)


@pytest.mark.parametrize("rate", ["100.0001", "1000", "9999.9999", "10000", *ABSURD])
def test_P1_an_earn_rate_above_100_points_per_unit_is_refused(client, login, member, buy, rate):
    """A marketer who types 10000 for 1.0000 reads the bound beside the earn rate, and
    only it: nothing is saved and purchases still earn a point per euro."""
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_change", args=[purchase_points().pk]),
        purchase_points_form(earn_rate=rate),
    )

    # then
    assert page.status_code == 200
    assert errors(page) == (
        "earn_rate: An earn rate is at most 100 points per currency unit: 1 gives a point "
        "per euro, 0.1 a point per ten euros."
    )
    assert purchase_points().earn_rate == 1
    assert earned(buy(member, "100")) == 100


def test_P1_an_earn_rate_of_100_is_saved(client, login, member, buy):
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_change", args=[purchase_points().pk]),
        purchase_points_form(earn_rate="100"),
    )

    # then
    assert page.status_code == 302
    assert earned(buy(member, "100")) == 10_000


# Defect: campaign multipliers up to 9,999.99, and minimum amounts no purchase reaches


def campaign_form(**changed) -> dict:
    """A new campaign, as its add page posts it."""
    return {
        "name": "Double week",
        "multiplier": "2",
        "starts_at_0": "2030-03-01",
        "starts_at_1": "00:00:00",
        "ends_at_0": "2030-03-08",
        "ends_at_1": "00:00:00",
        "is_active": "on",
        **changed,
    }


@pytest.mark.parametrize("multiplier", ["100.01", "9999.99", "10000", "1" * 30])
def test_P3_a_campaign_multiplier_above_x100_is_refused(client, login, no_campaigns, multiplier):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_campaign_add"), campaign_form(multiplier=multiplier))

    # then: the rule's words alone, not the column's digits
    assert page.status_code == 200
    assert errors(page) == (
        "multiplier: A multiplier is at most x100: 2 doubles the points, 1.5 adds half."
    )
    assert not Campaign.objects.exists()


def test_P3_a_multiplier_with_three_decimals_is_still_refused(client, login, no_campaigns):
    login("Marketer")

    page = client.post(reverse("admin:points_campaign_add"), campaign_form(multiplier="1.555"))

    assert "multiplier: Ensure that there are no more than 2 decimal places." in errors(page)
    assert not Campaign.objects.exists()


def test_P3_a_campaign_of_x100_is_saved(client, login, no_campaigns):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_campaign_add"), campaign_form(multiplier="100"))

    # then
    assert page.status_code == 302
    assert Campaign.objects.get().multiplier == 100


def test_T1_a_tier_multiplier_above_x100_is_refused_as_a_campaign_s(client, login, tiers):
    # given
    login("Marketer")
    gold = Tier.objects.get(code="gold")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[gold.pk]), tier_form(gold, multiplier="10000")
    )

    # then
    assert page.status_code == 200
    assert "multiplier: A multiplier is at most x100" in errors(page)
    assert Tier.objects.get(pk=gold.pk).multiplier == 2


@pytest.mark.parametrize("typed", ["sNaN", "NaN", "-Infinity"])
def test_T1_a_multiplier_that_is_no_number_is_refused_beside_it(client, login, tiers, typed):
    """Found by a review: "sNaN" was a server error (comparing it raised one)."""
    login("Marketer")
    gold = Tier.objects.get(code="gold")

    page = client.post(
        reverse("admin:tiers_tier_change", args=[gold.pk]), tier_form(gold, multiplier=typed)
    )

    assert page.status_code == 200
    assert "multiplier: Enter a number." in errors(page)
    assert Tier.objects.get(pk=gold.pk).multiplier == 2


def test_P3_a_minimum_amount_above_the_largest_purchase_is_refused(client, login, no_campaigns):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_campaign_add"), campaign_form(min_amount="100000.01"))

    # then
    assert page.status_code == 200
    assert (
        "min_amount: No purchase is above 100,000.00 (MAX_TRANSACTION_AMOUNT): "
        "with a higher minimum the campaign would never apply." in errors(page)
    )
    assert not Campaign.objects.exists()


def test_P3_a_minimum_amount_of_the_largest_purchase_is_saved_and_applies_to_it(
    client, login, member, buy
):
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_campaign_add"),
        campaign_form(min_amount="100000.00", starts_at_0="2026-03-01", ends_at_0="2026-03-08"),
    )
    purchase = buy(member, "100000.00", when=at("2026-03-02"))

    # then
    assert page.status_code == 302
    assert earned(purchase) == 200_000


# Defect: a threshold had no upper bound of its own (the column's 2,147,483,647)


THRESHOLD_BOUND = (
    "threshold: A threshold is at most 1,000,000,000 lifetime points, the largest opening "
    "balance the members import brings in: a member migrating in can be placed in any tier."
)


@pytest.mark.parametrize("threshold", ["1000000001", "2147483647", "2147483648", *ABSURD])
def test_T1_a_threshold_above_a_billion_lifetime_points_is_refused(client, login, tiers, threshold):
    """A marketer who adds a top tier with zeros too many reads the bound beside the
    threshold, and only it; nothing is saved."""
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:tiers_tier_add"), new_tier_form(threshold=threshold))

    # then
    assert page.status_code == 200
    assert errors(page) == THRESHOLD_BOUND
    assert not Tier.objects.filter(code="diamond").exists()


def test_T1_the_top_tier_s_threshold_cannot_be_raised_above_a_billion(client, login, tiers):
    # given
    login("Marketer")
    platinum = Tier.objects.get(code="platinum")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[platinum.pk]),
        tier_form(platinum, threshold="8000000000"),
    )

    # then
    assert page.status_code == 200
    assert errors(page) == THRESHOLD_BOUND
    assert Tier.objects.get(pk=platinum.pk).threshold == 8000


def test_T1_a_tier_at_a_billion_is_saved_and_the_largest_opening_balance_reaches_it(
    client, login, tiers
):
    """A marketer adds a tier at the bound; a member migrating in with the largest
    opening lifetime balance starts in it."""
    # given
    login("Marketer")
    form = new_tier_form(threshold="1000000000")
    shown = client.post(reverse("admin:tiers_tier_add"), form).context["programme"]

    # when
    saved = client.post(reverse("admin:tiers_tier_add"), {**form, "_confirm_threshold": shown})
    rows, bad = read_members(
        io.BytesIO(b"external_id,email,opening_lifetime\nM-BIG,big@example.com,1000000000\n")
    )
    report = import_members(rows, errors=bad)

    # then
    assert saved.status_code == 302
    assert report.errors == []
    assert Member.objects.get(external_id="M-BIG").qualified_tier.code == "diamond"
