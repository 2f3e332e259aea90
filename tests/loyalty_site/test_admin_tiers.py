"""Tiers in the plain admin: a threshold changed recalculates tiers (T3) and keeps its
place (T1), a new tier is previewed, a tier is deleted only once nothing names it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member, TierChange
from points.models import LedgerEntry
from tests.conftest import give_return, summary
from tiers.models import Tier

pytestmark = pytest.mark.django_db


def test_T3_changing_a_threshold_in_the_admin_recalculates_tiers(
    client_admin, member, buy, django_capture_on_commit_callbacks
):
    buy(member, "2500")
    gold = Tier.objects.get(code="gold")
    form = {
        "name": "Gold",
        "code": "gold",
        "threshold": "2000",
        "multiplier": "2",
        "upgrade_bonus_points": "250",
        "benefits": "",
    }
    url = reverse("admin:tiers_tier_change", args=[gold.pk])
    shown = client_admin.post(url, form).context["programme"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_admin.post(url, {**form, "_confirm_threshold": shown})
    assert response.status_code == 302, response.content
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "gold"
    assert TierChange.objects.filter(member=member, reason="rules_changed").exists()


GOLD_AT_2000 = {
    "name": "Gold",
    "code": "gold",
    "threshold": "2000",
    "multiplier": "2",
    "upgrade_bonus_points": "250",
    "benefits": "",
}


def confirm_gold_at_2000(client):
    """A marketer lowers Gold to 2,000 and confirms the preview."""
    url = reverse("admin:tiers_tier_change", args=[Tier.objects.get(code="gold").pk])
    shown = client.post(url, GOLD_AT_2000).context["programme"]
    return client.post(url, {**GOLD_AT_2000, "_confirm_threshold": shown}, follow=True)


def test_T3_a_write_before_the_recalculation_moves_the_member_as_the_rules_changed(
    client_admin, member, buy
):
    # given Silver at 2,500 lifetime points; Gold lowered to 2,000, the job not run yet
    bought = buy(member, "2500")
    confirm_gold_at_2000(client_admin)

    # when the member's next ledger write is a small return
    give_return(member, bought, "10")

    # then: Gold by the rules change, no bonus; the return changes nothing more
    last = TierChange.objects.filter(member=member).latest("pk")
    assert (last.reason, last.to_tier.code) == ("rules_changed", "gold")
    assert not LedgerEntry.objects.filter(member=member, reason="Welcome to Gold").exists()
    assert summary(member)["points_to_next_tier"] == 8000 - 2490


@pytest.mark.parametrize("threshold", ["3000", "5000", "0"])
def test_T1_a_threshold_keeps_its_tier_in_its_place_among_the_tiers(client_admin, tiers, threshold):
    # (the highest tier a member reached, and who is degraded, are read by rank: Silver
    # above Gold would pay no Gold bonus and no purchase would restore a degraded member)
    silver = Tier.objects.get(code="silver")
    form = {
        "name": "Silver",
        "code": "silver",
        "threshold": threshold,
        "multiplier": "1.5",
        "upgrade_bonus_points": "100",
        "benefits": "",
    }
    page = client_admin.post(reverse("admin:tiers_tier_change", args=[silver.pk]), form)
    assert page.status_code == 200
    assert (
        "Silver keeps its place among the tiers: a threshold between Bronze (0) and Gold "
        "(3,000). To rank the tiers otherwise, add a new tier."
    ) in page.content.decode().replace("&#x27;", "'")
    assert Tier.objects.get(code="silver").threshold == 1000


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # queued as the save commits
def test_T3_with_the_task_queue_down_a_threshold_is_saved_and_requalified_tonight(
    client_admin, member, buy, monkeypatch
):
    # given the task queue out of reach
    from kombu.exceptions import OperationalError

    from tiers import tasks

    def down(*args, **kwargs):
        raise OperationalError("broker down")

    monkeypatch.setattr(tasks.recalculate_all_tiers_task, "delay", down)
    buy(member, "2500")

    # when a marketer confirms a new threshold
    page = confirm_gold_at_2000(client_admin)

    # then saved, and told; the nightly beat row moves the member
    assert page.status_code == 200
    assert Tier.objects.get(code="gold").threshold == 2000
    assert "members will be requalified under the new thresholds tonight" in (page.content.decode())
    from django_celery_beat.models import PeriodicTask

    nightly = PeriodicTask.objects.get(name="Requalify members")
    assert nightly.task == "tiers.tasks.recalculate_all_tiers_task" and nightly.enabled
    tasks.recalculate_all_tiers_task()
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "gold"


def test_T1_a_new_tier_added_in_the_admin_is_previewed_then_saved_and_members_reach_it(
    client_admin, member, buy, django_capture_on_commit_callbacks
):
    # given a member with 2,500 lifetime points (Silver)
    buy(member, "2500")
    form = {
        "name": "Silver Plus",
        "code": "silver-plus",
        "threshold": "2000",
        "multiplier": "1.75",
        "upgrade_bonus_points": "0",
        "benefits": "",
    }
    url = reverse("admin:tiers_tier_add")

    # when: the marketer posts the new tier, sees who moves, and confirms
    preview = client_admin.post(url, form)
    previewed_only = not Tier.objects.filter(code="silver-plus").exists()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client_admin.post(url, {**form, "_confirm_threshold": preview.context["programme"]})

    # then
    assert preview.status_code == 200
    assert preview.context["moves"] == {"up": 1, "down": 0, "kept": 0}
    assert previewed_only
    assert saved.status_code == 302, saved.content
    assert Member.objects.get(pk=member.pk).qualified_tier.code == "silver-plus"


def test_P3_a_tier_a_campaign_is_limited_to_cannot_be_deleted_until_the_campaign_lets_go(
    client_admin, tiers
):
    # given a running campaign for Platinum only
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from points.models import Campaign

    now, platinum = timezone.now(), tiers["platinum"]
    campaign = Campaign.objects.create(
        name="Platinum triple",
        multiplier=Decimal("3"),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=10),
    )
    campaign.tiers.set([platinum])
    url = reverse("admin:tiers_tier_delete", args=[platinum.pk])

    # when
    page = client_admin.get(url)
    client_admin.post(url, {"post": "yes"})

    # then: refused, naming the campaign; once it lets go, the tier can go
    assert page.context["protected"] == [
        "Campaign “Platinum triple (x3)” is limited to Platinum: untick it there first"
    ]
    assert Tier.objects.filter(pk=platinum.pk).exists()
    campaign.tiers.clear()
    assert client_admin.post(url, {"post": "yes"}).status_code == 302
    assert not Tier.objects.filter(pk=platinum.pk).exists()


def test_T1_a_tier_members_hold_cannot_be_deleted_and_the_page_says_how_many(
    client, login, make_member, buy, django_assert_max_num_queries
):
    # given two Silver members, and a marketer on Silver's delete page
    for _ in range(2):
        buy(make_member(), "1000")
    login("Marketer")
    silver = Tier.objects.get(code="silver")
    url = reverse("admin:tiers_tier_delete", args=[silver.pk])

    # when
    with django_assert_max_num_queries(20):  # counted, whatever the number of members
        page = client.get(url)
    client.post(url, {"post": "yes"})

    # then: what names it, counted; no talk of a permission to delete members
    assert page.status_code == 200
    assert page.context["protected"] == ["Members: 2 name Silver", "Tier changes: 2 name Silver"]
    assert "permission to delete" not in page.content.decode()
    assert Tier.objects.filter(pk=silver.pk).exists()


def test_T1_a_tier_nobody_ever_held_can_be_deleted_after_the_nightly_figures(
    client, login, make_member, buy
):
    # given a new tier nobody reached, counted (0 members) by the analytics job
    from points.services.snapshots import take_snapshots

    member = make_member(joined_at=timezone.now() - timedelta(days=3))
    buy(member, "100", when=timezone.now() - timedelta(days=2))
    diamond = Tier.objects.create(name="Diamond", code="diamond", threshold=50000, multiplier=4)
    take_snapshots()

    # when a marketer deletes it
    login("Marketer")
    url = reverse("admin:tiers_tier_delete", args=[diamond.pk])
    page = client.get(url)
    client.post(url, {"post": "yes"})

    # then it goes
    assert not page.context["protected"]
    assert not Tier.objects.filter(pk=diamond.pk).exists()


def test_the_tier_list_writes_thresholds_and_bonuses_as_numbers_are_read(client_admin, tiers):
    page = client_admin.get(reverse("admin:tiers_tier_changelist")).content.decode()
    assert ">1,000<" in page and ">3,000<" in page and ">8,000<" in page
