"""What a marketer reads when a setting breaks a rule: words, not a database
constraint's name, and nothing saved."""

import pytest
from django.urls import reverse

from rewards.models import Reward
from tiers.models import MULTIPLIER_ABOVE_ZERO, Tier

pytestmark = pytest.mark.django_db


def test_a_tier_multiplier_of_zero_is_refused_in_words(client, login, tiers):
    # given
    login("Marketer")
    gold = Tier.objects.get(code="gold")
    url = reverse("admin:tiers_tier_change", args=[gold.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}

    # when
    page = client.post(url, {**data, "multiplier": "0"})

    # then: said beside the field, not above the form
    assert page.context["adminform"].form.errors == {"multiplier": [MULTIPLIER_ABOVE_ZERO]}
    assert "is violated" not in page.content.decode()
    assert Tier.objects.get(pk=gold.pk).multiplier == 2


def test_a_reward_window_that_ends_before_it_starts_is_refused_in_words(client, login, tiers):
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:rewards_reward_add"),
        {
            "name": "Spring gift",
            "points_cost": "300",
            "is_active": "on",
            "available_from_0": "2027-04-01",
            "available_from_1": "00:00:00",
            "available_until_0": "2027-03-01",
            "available_until_1": "00:00:00",
        },
    )

    # then
    html = page.content.decode()
    assert "“Available until” must be after “Available from”." in html
    assert "is violated" not in html
    assert not Reward.objects.filter(name="Spring gift").exists()


def test_a_negative_earn_rate_is_refused_in_words(client, login, tiers):
    # given
    from points.models import PointDefinition

    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_add"),
        {
            "name": "Odd rate",
            "handle": "odd-rate",
            "kind": "bonus",
            "earn_rate": "-1",
            "points": "0",
            "accrue_delay_days": "0",
            "redeemable": "on",
        },
    )

    # then: said beside the field, not above the form
    errors = page.context["adminform"].form.errors
    assert errors == {"earn_rate": ["The earn rate cannot be negative (0 earns nothing)."]}
    assert not PointDefinition.objects.filter(handle="odd-rate").exists()
