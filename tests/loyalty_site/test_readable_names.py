"""A name the marketer types (a tier's, a reward's, a point definition's, a campaign's)
that the field refuses, too long or left empty, is refused beside the field once, for
that reason alone: not also with "Give the ... a name people can read", which is for a
name of invisible characters (core.staff_input.unreadable_name)."""

import pytest
from django.urls import reverse

from points.models import Campaign, PointDefinition
from rewards.models import Reward
from tests.admin_pages import form_values
from tests.points.test_campaign_admin import posted as campaign_form
from tests.tiers.settings_forms import definition_form, new_tier_form
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def reward_form(client, **changed) -> dict:
    """A new reward, as its add page posts it."""
    values = form_values(client.get(reverse("admin:rewards_reward_add")).content.decode())
    return {**values, "name": "Mug", "points_cost": "100", **changed}


FORMS = {
    "tier": (Tier, "admin:tiers_tier_add", lambda client, **c: new_tier_form(**c), 60),
    "reward": (Reward, "admin:rewards_reward_add", reward_form, 100),
    "point definition": (
        PointDefinition,
        "admin:points_pointdefinition_add",
        lambda client, **c: definition_form(**c),
        100,
    ),
    "campaign": (
        Campaign,
        "admin:points_campaign_add",
        lambda client, **c: campaign_form(**c),
        100,
    ),
}


@pytest.mark.parametrize("what", FORMS)
@pytest.mark.parametrize("typed", ["too long", "empty"])
def test_a_name_the_field_refuses_is_refused_once_beside_it(client, login, tiers, what, typed):
    # given: a marketer on the add page
    model, url, form, limit = FORMS[what]
    login("Marketer")
    name = "Spring " * 20 if typed == "too long" else ""
    before = model.objects.count()

    # when
    page = client.post(reverse(url), form(client, name=name))

    # then: the field's own message, alone, shown beside the field; nothing saved
    assert page.status_code == 200
    said = page.context["adminform"].form.errors["name"]
    expected = (
        f"Ensure this value has at most {limit} characters (it has {len(name.strip())})."
        if typed == "too long"
        else "This field is required."
    )
    assert said == [expected]
    assert "a name people can read" not in page.content.decode()
    assert model.objects.count() == before


@pytest.mark.parametrize("what", FORMS)
@pytest.mark.parametrize(
    "typed, expected",
    [
        ("\u200b", "Give the {what} a name people can read."),
        (
            "Review\u200b",
            "A {what}'s name cannot hold an invisible character (U+200B ZERO WIDTH SPACE, "
            "character 7): it would look like another name.",
        ),
    ],
    ids=["invisible only", "invisible inside"],
)
def test_a_name_no_one_can_read_as_typed_is_refused_beside_it(
    client, login, tiers, what, typed, expected
):
    """Every name the marketer gives is shown to staff and members (a ledger line names
    the definition and the campaigns): one that shows nothing, or looks like another,
    names nothing."""
    # given: a marketer on the add page
    model, url, form, _ = FORMS[what]
    login("Marketer")
    before = model.objects.count()

    # when
    page = client.post(reverse(url), form(client, name=typed))

    # then
    assert page.status_code == 200
    assert page.context["adminform"].form.errors["name"] == [expected.format(what=what)]
    assert model.objects.count() == before


@pytest.mark.parametrize(
    "name, heading",
    [("members_member", "Members"), ("api_apikey", "API keys"), ("core_importbatch", "Imports")],
)
def test_a_list_is_headed_by_what_it_lists(admin_client, name, heading):
    html = admin_client.get(reverse(f"admin:{name}_changelist")).content.decode()

    assert f"<h1>{heading}</h1>" in html and f"<title>{heading} | CX Manager</title>" in html
    assert "to change" not in html
