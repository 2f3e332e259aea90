"""Names and handles a marketer types into the programme's settings never read as
another's (tier names, point definition handles, whatever the case or spaces), on
the form and in the database, before and after the upgrade that made them unique."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from points.models import PointDefinition
from tests.migrations import latest_after, migrate, migrate_to_latest  # noqa: F401 - a fixture
from tests.tiers.settings_forms import definition_form, errors, new_tier_form, tier_form
from tiers.models import Tier

pytestmark = pytest.mark.django_db


# Defect: tier names could repeat ("Gold" and "gold") or be invisible


@pytest.mark.parametrize("name", ["Gold", "gold", "GOLD"])
def test_T1_a_new_tier_named_as_another_whatever_the_case_is_refused(client, login, tiers, name):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:tiers_tier_add"), new_tier_form(name=name))

    # then
    assert page.status_code == 200
    assert (
        "name: A tier is already called Gold (from 3,000 points): names are unique whatever "
        "their case." in errors(page)
    )
    assert not Tier.objects.filter(code="diamond").exists()


@pytest.mark.parametrize("name", ["Rose\u00a0Gold", "Rose  gold"])
def test_T1_a_new_tier_named_as_another_whatever_its_spaces_is_refused(client, login, tiers, name):
    """A non-breaking space pasted from a design tool made a second "Rose Gold"."""
    # given
    Tier.objects.create(name="Rose Gold", code="rose", threshold=5_000, multiplier=2)
    login("Marketer")

    # when
    page = client.post(reverse("admin:tiers_tier_add"), new_tier_form(name=name))

    # then
    assert "name: A tier is already called Rose Gold (from 5,000 points)" in errors(page)
    assert not Tier.objects.filter(code="diamond").exists()


def test_T1_a_tier_renamed_as_another_is_refused(client, login, tiers):
    # given
    login("Marketer")
    silver = Tier.objects.get(code="silver")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[silver.pk]), tier_form(silver, name="gOLD")
    )

    # then
    assert "name: A tier is already called Gold" in errors(page)
    assert Tier.objects.get(pk=silver.pk).name == "Silver"


def test_T1_a_tier_keeps_its_own_name_in_another_case(client, login, tiers):
    # given
    login("Marketer")
    silver = Tier.objects.get(code="silver")

    # when
    page = client.post(
        reverse("admin:tiers_tier_change", args=[silver.pk]), tier_form(silver, name="SILVER")
    )

    # then
    assert page.status_code == 302
    assert Tier.objects.get(pk=silver.pk).name == "SILVER"


@pytest.mark.parametrize(
    "name, message",
    [
        ("\u200b", "name: Give the tier a name people can read."),
        ("\u200b\u00ad \u200b", "name: Give the tier a name people can read."),
        (
            "Gold\u200b",
            "name: A tier's name cannot hold an invisible character (U+200B ZERO WIDTH SPACE, "
            "character 5): it would look like another name.",
        ),
    ],
)
def test_T1_a_tier_name_of_invisible_characters_is_refused(client, login, tiers, name, message):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:tiers_tier_add"), new_tier_form(name=name))

    # then
    assert message in errors(page)
    assert not Tier.objects.filter(code="diamond").exists()


def test_T1_the_database_refuses_a_second_gold_whatever_the_case(tiers):
    # given: a tier written past the form (a script, the shell)
    diamond = Tier(name="GOLD", code="diamond", threshold=20000, multiplier=4)

    # when
    with pytest.raises(ValidationError) as refused:
        diamond.validate_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        diamond.save()

    # then
    assert "Another tier has this name: names are unique whatever their case." in str(refused.value)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("latest_after")
def test_T1_tiers_named_alike_before_the_upgrade_are_named_apart_by_it(tiers):
    # given: tiers saved before names were unique and visible
    old = migrate([("tiers", "0010_multiplier_at_most_x100")])
    Tier = old.get_model("tiers", "Tier")
    for name, code, threshold in [
        ("gold", "gold-2", 20000),
        ("\u200b", "ghost", 30000),
        ("Gold\u200b", "gold-3", 40000),
        ("Gold (gold-3)", "gold-4", 50000),
    ]:
        Tier.objects.create(name=name, code=code, threshold=threshold, multiplier=1)

    # when
    new = migrate([("tiers", "0011_tier_name_unique_any_case")])

    # then
    names = dict(new.get_model("tiers", "Tier").objects.values_list("code", "name"))
    assert names == {
        "bronze": "Bronze",
        "silver": "Silver",
        "gold": "Gold",
        "platinum": "Platinum",
        "gold-2": "gold (gold-2)",
        "ghost": "ghost",
        "gold-3": "Gold (gold-3 2)",
        "gold-4": "Gold (gold-3)",
    }


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("latest_after")
def test_T1_tiers_named_alike_but_for_their_spaces_are_named_apart_by_the_upgrade(
    tiers, client, login
):
    """Found by an audit of rules.md: 0011 kept "Rose Gold" and "Rose\u00a0Gold" apart,
    and the page, which tidies spaces, refused every later save of the second."""
    # given: tiers saved before names were tidied
    old = migrate([("tiers", "0019_multiplier_says_its_lower_bound")])
    OldTier = old.get_model("tiers", "Tier")
    for name, code, threshold in [
        ("Rose Gold", "rose", 20000),
        ("Rose\u00a0Gold", "rose-2", 30000),
        ("Cafe\u0301  Club", "cafe", 40000),
    ]:
        OldTier.objects.create(name=name, code=code, threshold=threshold, multiplier=1)

    # when: the upgrade
    new = migrate([("tiers", "0020_tier_names_tidied")])
    names = dict(new.get_model("tiers", "Tier").objects.values_list("code", "name"))
    migrate_to_latest()

    # then: named apart and tidied, and the second's page saves
    assert (names["rose"], names["rose-2"], names["cafe"]) == (
        "Rose Gold",
        "Rose Gold (rose-2)",
        "Caf\u00e9 Club",
    )
    login("Marketer")
    second = Tier.objects.get(code="rose-2")
    page = client.post(
        reverse("admin:tiers_tier_change", args=[second.pk]), tier_form(second, multiplier="1.5")
    )
    assert page.status_code == 302, errors(page)


# Defect: point definition handles were unique only case-sensitively


@pytest.mark.parametrize("handle", ["Write-A-Review", "WRITE-A-REVIEW"])
def test_P1_a_handle_another_definition_has_whatever_the_case_is_refused(
    client, login, tiers, handle
):
    # given
    login("Marketer")

    # when
    page = client.post(reverse("admin:points_pointdefinition_add"), definition_form(handle=handle))

    # then
    assert page.status_code == 200
    assert (
        "handle: Write a review has the handle write-a-review: handles are unique whatever "
        "their case (files and the API name definitions by it)." in errors(page)
    )
    assert not PointDefinition.objects.filter(handle=handle).exists()


def test_P1_a_taken_handle_and_points_that_count_for_nothing_are_both_said_once(
    client, login, tiers
):
    # given
    login("Marketer")
    form = definition_form(handle="write-a-review", counts_toward_tier="", redeemable="")

    # when
    page = client.post(reverse("admin:points_pointdefinition_add"), form)

    # then: each mistake said once, in the project's words, nothing saved
    said = errors(page)
    assert said.count("Points of this definition would count for nothing") == 1
    assert "handle: Write a review has the handle write-a-review: handles are unique" in said
    assert "already exists" not in said
    assert PointDefinition.objects.filter(handle="write-a-review").count() == 1


def test_P1_a_definition_keeps_its_own_handle_in_another_case(client, login, tiers):
    # given
    login("Marketer")
    review = PointDefinition.objects.get(handle="write-a-review")
    url = reverse("admin:points_pointdefinition_change", args=[review.pk])

    # when
    page = client.post(
        url,
        definition_form(name=review.name, handle="Write-A-Review", points=str(review.points)),
    )

    # then
    assert page.status_code == 302
    assert PointDefinition.objects.get(pk=review.pk).handle == "Write-A-Review"


def test_P1_the_database_refuses_a_handle_in_another_case(tiers):
    # given: a definition written past the form (a script, the shell)
    review = PointDefinition(name="Review", handle="Write-a-Review", kind="action", points=5)

    # when
    with pytest.raises(ValidationError) as refused:
        review.validate_constraints()
    with pytest.raises(IntegrityError), transaction.atomic():
        review.save()

    # then
    assert "Another point definition has this handle: handles are unique whatever their " in str(
        refused.value
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("latest_after")
def test_P1_handles_alike_before_the_upgrade_are_told_apart_by_it(tiers):
    # given: definitions saved before handles were unique whatever their case
    old = migrate([("points", "0024_campaign_multiplier_and_minimum_at_most")])
    Definition = old.get_model("points", "PointDefinition")
    for name, handle in [
        ("Review", "Write-A-Review"),
        ("Manual", "Manual-Adjustment"),
        ("Review again", "WRITE-A-REVIEW"),
        ("Taken", "write-a-review-2"),
    ]:
        Definition.objects.create(name=name, handle=handle, kind="bonus", points=0)

    # when
    new = migrate([("points", "0025_definition_handle_unique_any_case")])

    # then
    handles = dict(new.get_model("points", "PointDefinition").objects.values_list("name", "handle"))
    assert {name: handles[name] for name in ["Write a review", "Manual adjustment"]} == {
        "Write a review": "write-a-review",
        "Manual adjustment": "manual-adjustment",
    }
    assert {name: handles[name] for name in ["Review", "Manual", "Review again", "Taken"]} == {
        "Review": "Write-A-Review-3",
        "Manual": "Manual-Adjustment-2",
        "Review again": "WRITE-A-REVIEW-4",
        "Taken": "write-a-review-2",
    }
