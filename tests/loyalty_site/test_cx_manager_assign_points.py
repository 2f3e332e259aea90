"""The CX Manager's roles and assign points (P6): who may assign, what the page says,
a double submit, refusals, the bounds, and the system definitions it relies on."""

import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from points.models import LedgerEntry
from points.services import adjust_points
from tests.conftest import summary
from tests.loyalty_site.cx_pages import assign, member_page
from tiers.models import Tier

pytestmark = pytest.mark.django_db


# Roles


def test_an_agent_cannot_open_the_tier_page_and_can_assign_points(client, login, member):
    agent = login("CX agent")
    gold = Tier.objects.get(code="gold")
    assert client.get(reverse("admin:tiers_tier_change", args=[gold.pk])).status_code == 403
    assert client.post(reverse("admin:tiers_tier_change", args=[gold.pk]), {}).status_code == 403
    for page in ["points_campaign_add", "rewards_reward_add", "points_pointdefinition_add"]:
        assert client.get(reverse(f"admin:{page}")).status_code == 403

    response = assign(client, member, 250)

    assert response.status_code == 302
    assert summary(member)["available"] == 250
    entry = LedgerEntry.objects.get(member=member, kind="adjustment")
    assert entry.created_by == agent and entry.reason == "Goodwill: late delivery"


def test_a_marketer_edits_tiers_and_cannot_assign_points(client, login, member):
    login("Marketer")
    gold = Tier.objects.get(code="gold")
    page = client.get(reverse("admin:tiers_tier_change", args=[gold.pk]))
    assert page.status_code == 200 and b'name="_save"' in page.content

    response = client.post(
        reverse("admin:members_member_assign_points", args=[member.pk]),
        {"points": 250, "reason": "Nice", "token": uuid.uuid4()},
    )

    assert response.status_code == 403
    assert b"Assign points" not in client.get(member_page(member)).content
    assert summary(member)["available"] == 0


# Assign points (P6)


def test_assigning_points_shows_the_new_balance_and_is_attributable(client, login, member):
    agent = login("CX agent")

    response = assign(client, member, 250)

    page = client.get(response.url)
    html = page.content.decode()
    assert "Assigned +250 points: Goodwill: late delivery" in html
    assert f"{member.external_id} now has 250 points available" in html
    assert '<div class="cx-big" id="available">250</div>' in html
    log = LogEntry.objects.get(object_id=str(member.pk))
    assert log.user == agent and "Assigned +250 points" in log.get_change_message()


def test_one_point_assigned_or_removed_is_said_in_the_singular(client, login, member):
    login("CX agent")

    assert (
        "Assigned +1 point: Goodwill" in client.get(assign(client, member, 1).url).content.decode()
    )
    assert (
        "Assigned -1 point: Goodwill" in client.get(assign(client, member, -1).url).content.decode()
    )


def test_a_double_submit_of_assign_points_adds_the_points_once(client, login, member):
    login("CX agent")
    token = uuid.uuid4()

    first = assign(client, member, 250, token=token)
    second = assign(client, member, 250, token=token)

    assert first.status_code == second.status_code == 302
    assert LedgerEntry.objects.filter(member=member, kind="adjustment").count() == 1
    assert summary(member)["available"] == 250
    assert "nothing was applied twice" in client.get(second.url).content.decode()


def test_a_refused_adjustment_shows_why_writes_nothing_and_can_be_sent_again(client, login, member):
    login("CX agent")
    token = uuid.uuid4()

    refused = assign(client, member, -100, token=token)

    assert refused.status_code == 200
    assert f"{member.external_id} has only 0 available" in refused.content.decode()
    assert refused.context["assign_form"]["points"].value() == "-100"  # input kept
    assert not LedgerEntry.objects.filter(member=member).exists()
    assert assign(client, member, 100, token=token).status_code == 302
    assert summary(member)["available"] == 100


def test_assigning_points_needs_a_reason(client, login, member):
    login("CX agent")
    response = assign(client, member, 50, reason="  ")
    assert response.status_code == 200 and b"Say why the points are adjusted" in response.content
    assert not LedgerEntry.objects.filter(member=member).exists()


# System definitions and the bounds of assign points


def test_a_marketer_cannot_change_the_handle_or_kind_of_a_system_definition(
    client, login, member, buy
):
    # given
    from points.models import PointDefinition

    login("Marketer")
    bonus = PointDefinition.objects.get(handle="tier-up-bonus")
    url = reverse("admin:points_pointdefinition_change", args=[bonus.pk])

    # when: the form is posted with a new handle and kind
    response = client.post(
        url,
        {
            "name": "Welcome bonus",
            "handle": "renamed",
            "kind": "action",
            "earn_rate": "1",
            "points": "0",
            "accrue_delay_days": "0",
            "redeemable": "on",
            "is_active": "on",
        },
    )

    # then: the name changed, the handle and kind did not, and tier-ups still pay
    assert response.status_code == 302
    bonus.refresh_from_db()
    assert (bonus.name, bonus.handle, bonus.kind) == ("Welcome bonus", "tier-up-bonus", "bonus")
    buy(member, "1000")
    assert summary(member)["available"] == 1000 + 100
    delete = client.post(
        reverse("admin:points_pointdefinition_delete", args=[bonus.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403


def test_a_missing_system_definition_is_a_clear_error_not_a_crash(member, buy, staff):
    # given: the definition was renamed behind the admin's back
    from django.core.exceptions import ValidationError

    from points.models import PointDefinition

    PointDefinition.objects.filter(handle="manual-adjustment").update(handle="other")

    # when / then
    with pytest.raises(ValidationError, match="'manual-adjustment' is missing"):
        adjust_points(member=member, points=10, reason="Goodwill", by=staff)


@pytest.mark.parametrize(
    "points, message",
    [
        (9_000_000_000_000_000_000, "At most 100,000 points"),
        (10**19, "At most 100,000 points"),
        (-(10**19), "At most 100,000 points"),
        (100_001, "At most 100,000 points"),
        ("1e400", "Enter a whole number"),
    ],
)
def test_assign_points_refuses_absurd_amounts_with_a_message(
    client, login, member, points, message
):
    # given
    login("CX agent")

    # when
    response = assign(client, member, points)

    # then
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_adjustments_up_to_the_setting_are_accepted(member, staff, settings):
    # given
    settings.MAX_ADJUSTMENT_POINTS = 5

    # when
    adjust_points(member=member, points=5, reason="Goodwill", by=staff)

    # then
    assert summary(member)["available"] == 5


def test_an_adjustment_reason_longer_than_the_ledger_keeps_is_refused(member, staff):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Keep the reason to 255 characters"):
        adjust_points(member=member, points=10, reason="x" * 300, by=staff)
    assert not LedgerEntry.objects.filter(member=member).exists()


def test_points_that_move_the_tier_say_so_and_the_balance_adds_up(client, login, member, buy):
    """Found by a walkthrough: 549 + 200 made "849 points available", the tier-up
    bonus unsaid, with the customer on the line."""
    from points.models import PointDefinition

    tier_points, _ = PointDefinition.objects.get_or_create(
        handle="goodwill-tier-points",
        defaults=dict(name="Goodwill (counts toward tier)", kind="bonus", counts_toward_tier=True),
    )
    buy(member, "900")  # 900 points, Bronze; Silver from 1,000, with 100 points
    login("CX agent")

    response = assign(client, member, 200, definition=tier_points.pk)

    html = client.get(response.url).content.decode()
    assert (
        "Assigned +200 points: Goodwill: late delivery. Now Silver, with a tier-up bonus of "
        f"100 points. {member.external_id} now has 1,200 points available." in html
    )


def test_points_that_qualify_a_member_held_above_by_a_status_match_say_what_they_qualify_for(
    client, login, member, buy, staff
):
    """Found by a review: "Now Gold" for a member already Gold by a status match, whose
    points reached Silver (and Silver's bonus)."""
    from datetime import timedelta

    from django.utils import timezone

    from points.models import PointDefinition
    from tiers.services import grant_status

    tier_points, _ = PointDefinition.objects.get_or_create(
        handle="goodwill-tier-points",
        defaults=dict(name="Goodwill (counts toward tier)", kind="bonus", counts_toward_tier=True),
    )
    buy(member, "900")
    until = timezone.localdate() + timedelta(days=60)
    gold = Tier.objects.get(code="gold")
    grant_status(member=member, tier=gold, until=until, reason="Competitor's Gold", by=staff)
    login("CX agent")

    response = assign(client, member, 200, definition=tier_points.pk)

    html = client.get(response.url).content.decode()
    assert "Now qualifies for Silver, with a tier-up bonus of 100 points." in html
