"""E3: the points due at a passed cutoff are taken by its run, whatever a marketer
changes before that run (a few minutes after midnight, or longer after downtime):
switching the cycle off, moving its start past the cutoff, or changing a tier's
exemption waits until the run, as freezes and merges do."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from points.models import ExpiryPolicy, LedgerEntry
from points.services import expire_points
from tiers.models import Tier

pytestmark = pytest.mark.django_db

SILVER = {
    "name": "Silver",
    "code": "silver",
    "threshold": "1000",
    "multiplier": "1.5",
    "upgrade_bonus_points": "100",
    "benefits": "",
    "points_expire": "on",
}


@pytest.fixture
def awaiting(make_member, buy):
    """A monthly cycle since the first of last month, whose cutoff (last month's last
    day) has passed and not run; a Silver member with 1,600 points bought before it.
    Returns the member and the cutoff as the messages write it."""
    today = timezone.localdate()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", last_month_end.replace(day=1)
    policy.save()
    member = make_member(joined_at=timezone.now() - timedelta(days=90))
    buy(member, "1500", when=timezone.now() - timedelta(days=60))
    return member, date_format(last_month_end, "j M Y")


def policy_url():
    return reverse("admin:points_expirypolicy_change", args=[ExpiryPolicy.current().pk])


def expired(member) -> list[int]:
    return list(
        LedgerEntry.objects.filter(member=member, kind="expiry").values_list("points", flat=True)
    )


@pytest.mark.parametrize("change", ["switched off", "start moved past the cutoff"])
def test_E3_the_cycle_cannot_change_while_a_passed_cutoff_awaits_its_run(
    client, login, awaiting, change
):
    # given
    member, cutoff = awaiting
    login("Marketer")
    policy = ExpiryPolicy.current()
    posted = {"cycle": "monthly", "starts_on": str(timezone.localdate()), "reminder_days": "14"}
    if change == "switched off":
        posted |= {"cycle": "never", "starts_on": str(policy.starts_on)}

    # when
    page = client.post(policy_url(), {**posted, "_confirm_policy": "1"})

    # then: refused, saying why; the run then takes the member's points
    assert page.status_code == 200
    assert (
        f"The points expiry of {cutoff} has not finished: change the cycle or its start "
        "once it has (the nightly job runs at 00:05)"
    ) in page.content.decode()
    saved = ExpiryPolicy.current()
    assert (saved.cycle, saved.starts_on) == ("monthly", policy.starts_on)
    expire_points()
    assert expired(member) == [-1600]


def test_E3_once_the_run_is_done_the_cycle_can_be_switched_off(client, login, awaiting):
    # given the run done
    member, _ = awaiting
    expire_points()
    login("Marketer")
    starts_on = ExpiryPolicy.current().starts_on

    # when
    page = client.post(
        policy_url(), {"cycle": "never", "starts_on": str(starts_on), "reminder_days": "14"}
    )

    # then
    assert page.status_code == 302, page.content.decode()
    assert ExpiryPolicy.current().cycle == "never"
    assert expired(member) == [-1600]


@pytest.mark.parametrize(("code", "points_expire"), [("silver", False), ("gold", True)])
def test_E3_a_tier_s_exemption_cannot_change_while_a_passed_cutoff_awaits_its_run(
    client, login, awaiting, code, points_expire
):
    # given: Silver's points expire, Gold's never do
    member, cutoff = awaiting
    login("Marketer")
    tier = Tier.objects.get(code=code)
    posted = {
        "name": tier.name,
        "code": tier.code,
        "threshold": str(tier.threshold),
        "multiplier": str(tier.multiplier),
        "upgrade_bonus_points": str(tier.upgrade_bonus_points),
        "benefits": "",
    }
    if points_expire:
        posted["points_expire"] = "on"

    # when the marketer makes Silver exempt, or Gold's points expire
    page = client.post(reverse("admin:tiers_tier_change", args=[tier.pk]), posted)

    # then: refused on the field, saying why; the run takes what was due at the cutoff
    assert page.status_code == 200
    assert (
        f"The points expiry of {cutoff} has not finished: change a tier&#x27;s expiry once it has"
    ) in page.content.decode()
    assert Tier.objects.get(pk=tier.pk).points_expire is not points_expire
    expire_points()
    assert expired(member) == [-1600]


def test_E3_once_the_run_is_done_a_tier_can_be_made_exempt(client, login, awaiting):
    # given the run done
    expire_points()
    login("Marketer")
    silver = Tier.objects.get(code="silver")

    # when
    posted = {key: value for key, value in SILVER.items() if key != "points_expire"}
    page = client.post(reverse("admin:tiers_tier_change", args=[silver.pk]), posted)

    # then
    assert page.status_code == 302, page.content.decode()
    assert Tier.objects.get(pk=silver.pk).points_expire is False


def test_E3_a_tier_s_other_fields_change_while_a_cutoff_awaits_its_run(client, login, awaiting):
    # given
    login("Marketer")
    silver = Tier.objects.get(code="silver")

    # when the marketer renames Silver, its exemption as it was
    page = client.post(
        reverse("admin:tiers_tier_change", args=[silver.pk]), {**SILVER, "name": "Argent"}
    )

    # then
    assert page.status_code == 302, page.content.decode()
    assert Tier.objects.get(pk=silver.pk).name == "Argent"
