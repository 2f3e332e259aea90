"""The definition purchases earn by cannot be switched off, turned into another kind
or deleted from the settings; an earn rate of 0 pauses purchase points instead."""

import pytest
from django.urls import reverse

from points.models import PointDefinition
from tests.conftest import earned
from tests.tiers.settings_forms import (
    definition_form,
    errors,
    purchase_points,
    purchase_points_form,
)

pytestmark = pytest.mark.django_db


# Defect: switching off the definition purchases earn by made every purchase refused


@pytest.mark.parametrize("change", [{"is_active": ""}, {"kind": "bonus"}, {"kind": "action"}])
def test_P1_the_definition_purchases_earn_by_cannot_be_switched_off(
    client, login, member, buy, change
):
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_change", args=[purchase_points().pk]),
        purchase_points_form(**change),
    )

    # then: the marketer reads why and what to do instead; purchases still earn
    assert page.status_code == 200
    assert (
        f"{next(iter(change))}: Purchases earn by Purchase points: without it every purchase "
        "(tills, web shop, API, files) would be refused. To give no purchase points for a "
        "while, set its earn rate to 0; to earn otherwise, change its earn rate or counting."
    ) in errors(page)
    assert (purchase_points().is_active, purchase_points().kind) == (True, "purchase")
    assert earned(buy(member, "100")) == 100


def test_P1_the_definition_purchases_earn_by_cannot_be_deleted_even_unused(
    client, django_user_model, tiers
):
    # given: a programme with no purchase yet (nothing names the definition)
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    url = reverse("admin:points_pointdefinition_delete", args=[purchase_points().pk])

    # when
    shown = client.get(url)
    posted = client.post(url, {"post": "yes"})

    # then
    assert "Purchases earn by Purchase points: without it every purchase" in shown.content.decode()
    assert posted.status_code == 200 and purchase_points().is_active


def test_P1_an_earn_rate_of_0_pauses_purchase_points_and_purchases_are_still_recorded(
    client, login, member, buy
):
    # given
    login("Marketer")

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_change", args=[purchase_points().pk]),
        purchase_points_form(earn_rate="0"),
    )
    purchase = buy(member, "100")

    # then
    assert page.status_code == 302
    assert earned(purchase) == 0 and purchase.pk


def test_P1_another_purchase_definition_can_be_switched_off(client, login, member, buy):
    # given: a second purchase definition, not active
    login("Marketer")
    spare = PointDefinition.objects.create(
        name="Purchase points 2027", handle="purchase-2027", kind="purchase", is_active=False
    )

    # when
    page = client.post(
        reverse("admin:points_pointdefinition_change", args=[spare.pk]),
        definition_form(
            name=spare.name, handle=spare.handle, kind="bonus", is_active="", points="0"
        ),
    )

    # then
    assert page.status_code == 302
    assert PointDefinition.objects.get(pk=spare.pk).kind == "bonus"
