"""The CX Manager's dashboard and the tiers' configuration pages (T3): what a marketer
sees before a change is saved, in the order the tiers rank."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from members.models import Member
from points.models import ExpiryPolicy, PointDefinition
from points.services import adjust_points
from tests.admin_pages import form_values
from tests.conftest import at, summary
from tiers.models import Tier

pytestmark = pytest.mark.django_db

# Dashboard


def test_the_dashboard_shows_tiers_closest_members_risk_and_expiry(
    client, login, make_member, buy, degradation, django_assert_max_num_queries
):
    login("CX agent")
    now = timezone.now()
    close = make_member()
    buy(close, "990", when=now - timedelta(days=1))  # 10 points to Silver
    risky = make_member(joined_at=now - timedelta(days=200))
    buy(risky, "1200", when=now - timedelta(days=85))  # Silver, drops in 5 days
    for _ in range(20):
        make_member()
    policy = ExpiryPolicy.current()
    policy.cycle, policy.starts_on = "monthly", timezone.localdate()  # as the admin saves it
    policy.save()

    # the first load; two queries per degradation step; the kept expiry preview
    with django_assert_max_num_queries(38):
        page = client.get(reverse("admin:index"))

    html = page.content.decode()
    assert page.status_code == 200 and "CX Manager" in html
    bronze = next(row for row in page.context["tiers"] if row["tier"].code == "bronze")
    assert bronze["members"] == 21
    assert f"{close}</a></td>\n              <td>10 points to Silver" in html
    assert page.context["at_risk_count"] == 1 and str(risky) in html
    assert "Silver → Bronze on" in html
    # 990 of the close member, 1,200 + 100 bonus of the risky one (Silver's points expire)
    assert page.context["stake"] == {"points": 2_290, "members": 2}


# Tier configuration (T3)

# Silver's page as the seed programme has it, its threshold moved to 2,000.
SILVER_AT_2000 = {
    "name": "Silver",
    "code": "silver",
    "threshold": "2000",
    "multiplier": "1.5",
    "points_expire": "on",
    "upgrade_bonus_points": "100",
    "benefits": "",
}


def test_a_threshold_change_shows_who_would_move_before_it_is_saved(
    client, login, make_member, buy, django_capture_on_commit_callbacks
):
    login("Marketer")
    for amount in ["1500", "1500", "2500", "500"]:
        buy(make_member(), amount)
    silver = Tier.objects.get(code="silver")
    form = SILVER_AT_2000
    url = reverse("admin:tiers_tier_change", args=[silver.pk])

    preview = client.post(url, form)

    assert preview.status_code == 200
    html = preview.content.decode()
    assert "from 1,000 to 2,000" in html
    assert preview.context["moves"] == {"up": 0, "down": 2, "kept": 0}
    assert Tier.objects.get(code="silver").threshold == 1000  # nothing saved yet

    shown = preview.context["programme"]  # the confirmation names what it was shown for
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, {**form, "_confirm_threshold": shown})

    assert saved.status_code == 302
    assert Tier.objects.get(code="silver").threshold == 2000
    assert Member.objects.filter(qualified_tier__code="silver").count() == 1
    assert LogEntry.objects.filter(object_id=str(silver.pk)).exists()


def test_T3_a_threshold_confirmation_shown_before_another_change_is_shown_again(
    client, login, member, buy
):
    # given: a marketer sees Silver's move to 2,000; meanwhile Gold is changed
    login("Marketer")
    buy(member, "1500")
    silver = Tier.objects.get(code="silver")
    form = SILVER_AT_2000
    url = reverse("admin:tiers_tier_change", args=[silver.pk])
    shown = client.post(url, form).context["programme"]
    gold = Tier.objects.get(code="gold")
    gold.threshold = 2500
    gold.save()

    # when: the first marketer confirms what they saw
    page = client.post(url, {**form, "_confirm_threshold": shown})

    # then: nothing saved; the moves again, as the programme is now
    assert page.status_code == 200
    assert "changed by someone else since you saw this" in page.content.decode()
    assert Tier.objects.get(code="silver").threshold == 1000


def test_the_tier_list_is_in_threshold_order(client, login, tiers):
    login("Marketer")
    page = client.get(reverse("admin:tiers_tier_changelist"))
    names = [tier.name for tier in page.context["cl"].result_list]
    assert names == ["Bronze", "Silver", "Gold", "Platinum"]


def test_the_transaction_list_shows_the_newest_recorded_first(client, login, member, buy):
    login("CX agent")
    for external_id, day in [("T-1", "2026-03-05"), ("T-2", "2026-03-01"), ("T-3", "2026-03-03")]:
        buy(member, "10", when=at(day), external_id=external_id)

    page = client.get(reverse("admin:points_transaction_changelist"))

    assert [t.external_id for t in page.context["cl"].result_list] == ["T-3", "T-2", "T-1"]


# System definitions: what the marketer may change (docs/rules.md, System definitions)


def test_P6_a_marketer_changes_only_the_name_and_tier_counting_of_manual_adjustments(
    client, login, member, staff
):
    # given
    login("Marketer")
    manual = PointDefinition.objects.get(handle="manual-adjustment")
    url = reverse("admin:points_pointdefinition_change", args=[manual.pk])

    # when: the form is posted with every field changed (a page opened elsewhere, a tool)
    response = client.post(
        url,
        {
            "name": "Goodwill",
            "counts_toward_tier": "on",
            "accrue_delay_days": "30",
            "earn_rate": "3",
            "points": "7",
            # redeemable and is_active unticked
        },
    )

    # then: the name and the tier counting changed; adjustments are still spendable at once
    assert response.status_code == 302, response.content.decode()[-2000:]
    manual.refresh_from_db()
    assert (manual.name, manual.counts_toward_tier) == ("Goodwill", True)
    assert (manual.redeemable, manual.is_active, manual.accrue_delay_days) == (True, True, 0)
    adjust_points(member=member, points=4, reason="Sorry for the wait", by=staff)
    assert summary(member)["available"] == 4
    page = client.get(url).content.decode()
    assert 'name="redeemable"' not in page and 'name="counts_toward_tier"' in page


def test_P1_saving_a_definition_keeps_the_earn_rate_another_marketer_saved_meanwhile(
    client, login, tiers
):
    """Found by a review: a page opened before put the old earn rate back for every
    purchase."""
    # given: the purchase definition's page open; another marketer doubles its earn rate
    login("Marketer")
    purchases = PointDefinition.objects.get(handle="purchase-points")
    url = reverse("admin:points_pointdefinition_change", args=[purchases.pk])
    values = form_values(client.get(url).content.decode())
    PointDefinition.objects.filter(pk=purchases.pk).update(earn_rate=2)

    # when: this marketer renames it on the page opened before
    assert client.post(url, {**values, "name": "Points per euro"}).status_code == 302

    # then: both changes stand
    purchases.refresh_from_db()
    assert (purchases.name, purchases.earn_rate) == ("Points per euro", 2)


def test_a_definition_whose_points_would_count_for_nothing_is_refused(client, login):
    login("Marketer")

    page = client.post(
        reverse("admin:points_pointdefinition_add"),
        {
            "name": "Nothing points",
            "handle": "nothing",
            "kind": "bonus",
            "earn_rate": "1",
            "points": "0",
            "accrue_delay_days": "0",
            "is_active": "on",
            # neither redeemable nor counts_toward_tier
        },
    )

    assert page.status_code == 200
    assert "Points of this definition would count for nothing" in page.content.decode()
    assert not PointDefinition.objects.filter(handle="nothing").exists()
