"""What a marketer types into the programme's settings (tiers, point definitions,
campaigns, the expiry policy) keeps the programme working: a typo of a few digits, a
name or handle that reads as another's, or switching off the definition purchases earn
by is refused on the form, in words beside the field, and nothing is saved."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.html import escape

from members.models import Member
from points.member_rows import read_members
from points.models import Campaign, ExpiryPolicy, PointDefinition
from points.services import import_members
from tests.conftest import at, earned
from tests.migrations import latest_after, migrate  # noqa: F401 - a fixture
from tiers.models import Tier

pytestmark = pytest.mark.django_db

ABSURD = ["999999999999", "99999999999999999999999"]  # past the column; past any integer


def tier_form(tier: Tier, **changed) -> dict:
    """A tier's change form as its page posts it, with `changed` typed over it."""
    return {
        "name": tier.name,
        "code": tier.code,
        "threshold": str(tier.threshold),
        "multiplier": str(tier.multiplier),
        "points_expire": "on" if tier.points_expire else "",
        "upgrade_bonus_points": str(tier.upgrade_bonus_points),
        "benefits": tier.benefits,
        **changed,
    }


def definition_form(**changed) -> dict:
    """A new action definition, as its add page posts it."""
    return {
        "name": "Write a long review",
        "handle": "long-review",
        "kind": "action",
        "earn_rate": "1",
        "points": "300",
        "accrue_delay_days": "0",
        "counts_toward_tier": "on",
        "redeemable": "on",
        "is_active": "on",
        "awarded_on": "",
        **changed,
    }


def errors(page) -> str:
    """The form's errors as the marketer reads them beside each field (and shown on the
    page)."""
    form = page.context["adminform"].form
    html = page.content.decode()
    assert all(escape(message) in html for messages in form.errors.values() for message in messages)
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in form.errors.items())


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


# Defect: tier names could repeat ("Gold" and "gold") or be invisible


def new_tier_form(**changed) -> dict:
    """A new tier, as its add page posts it."""
    return {
        "name": "Diamond",
        "code": "diamond",
        "threshold": "20000",
        "multiplier": "4",
        "points_expire": "",
        "upgrade_bonus_points": "1000",
        "benefits": "",
        **changed,
    }


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


# Defect: switching off the definition purchases earn by made every purchase refused


def purchase_points() -> PointDefinition:
    return PointDefinition.objects.get(handle="purchase-points")


def purchase_points_form(**changed) -> dict:
    """ "Purchase points" as its change page posts it, with `changed` typed over it."""
    purchase = purchase_points()
    saved = {
        "name": purchase.name,
        "handle": purchase.handle,
        "kind": purchase.kind,
        "earn_rate": str(purchase.earn_rate),
        "points": str(purchase.points),
    }
    return definition_form(**{**saved, **changed})


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
