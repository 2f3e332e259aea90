"""Ids and filters that are no ids (found by a crawl of every admin page): a message or
Django's own "?e=1" and "doesn't exist" pages, never a 500, and nothing changed."""

import pytest
from axes.models import AccessAttempt
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from rewards.models import Redemption
from rewards.services import redeem

pytestmark = pytest.mark.django_db

NOT_IDS = ["abc", "\x00", "99999999999999999999", "1.5"]


@pytest.mark.parametrize("selected", NOT_IDS)
def test_an_action_posted_with_ids_that_are_not_ids_says_so_and_changes_nothing(
    admin_client, member, buy, catalogue, selected
):
    buy(member, 2000)
    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])
    page = admin_client.post(
        reverse("admin:rewards_redemption_changelist"),
        {"action": "cancel", ACTION_CHECKBOX_NAME: [redemption.pk, selected], "reason": "x"},
        follow=True,
    )
    assert page.status_code == 200
    assert "The selection holds rows that do not exist" in page.content.decode()
    assert Redemption.objects.get(pk=redemption.pk).status != Redemption.Status.CANCELLED


@pytest.mark.parametrize("role", [None, "CX agent"])
def test_an_object_id_with_a_nul_is_no_500_for_anyone(client, login, role):
    login(role)
    page = client.get(reverse("admin:api_apikey_change", args=["\x00"]))
    assert page.status_code in (302, 403)


def test_an_object_id_with_a_nul_is_an_object_that_does_not_exist(admin_client):
    page = admin_client.get(reverse("admin:api_apikey_change", args=["\x00"]), follow=True)
    assert page.status_code == 200 and "doesn’t exist" in page.content.decode()


@pytest.mark.parametrize(
    "url_name, query",
    [
        ("admin:tiers_tier_changelist", {"name__gte": "\x00"}),
        ("admin:members_tierchange_changelist", {"reason__exact": "\x00"}),
    ],
)
def test_a_list_filter_with_a_nul_gives_djangos_invalid_filter_page(admin_client, url_name, query):
    page = admin_client.get(reverse(url_name), query)
    assert page.status_code == 302 and page.url.endswith("?e=1")


@pytest.mark.parametrize(
    "url_name, query",
    [
        ("admin:members_member_changelist", {"best_tier__gte": "99999999999999999999"}),
        ("admin:api_webhookdelivery_changelist", {"endpoint__gte": "99999999999999999999"}),
        ("admin:axes_accesslog_changelist", {"ip_address__gte": "abc"}),
    ],
)
def test_a_list_filter_the_database_cannot_compare_is_no_500(admin_client, url_name, query):
    # SQLite cannot hold the number; PostgreSQL compares it (and finds nothing)
    page = admin_client.get(reverse(url_name), query)
    assert page.status_code == 200 or page.url.endswith("?e=1")


def test_expired_login_attempts_are_cleaned_up_by_the_action(admin_client):
    old = AccessAttempt.objects.create(
        username="mallory", ip_address="127.0.0.1", failures_since_start=3
    )
    month_ago = timezone.now() - timezone.timedelta(days=30)
    AccessAttempt.objects.filter(pk=old.pk).update(attempt_time=month_ago)
    page = admin_client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "cleanup_expired_attempts", ACTION_CHECKBOX_NAME: [old.pk]},
        follow=True,
    )
    assert page.status_code == 200
    assert "Cleaned up 1 expired access attempts." in page.content.decode()
    assert not AccessAttempt.objects.exists()
