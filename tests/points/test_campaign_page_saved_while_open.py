"""P3: a campaign's page saves what its marketer changed on it, not the page's copy of
what another marketer saved while it was open (as a tier's and a reward's do)."""

import pytest
from django.urls import reverse

from points.models import Campaign
from tests.admin_pages import form_values
from tests.points.test_campaign_admin import campaign

pytestmark = pytest.mark.django_db


def test_P3_saving_a_campaign_keeps_what_another_marketer_saved_while_its_page_was_open(
    client, login, tiers, no_campaigns
):
    """Found by a review: the page opened before wrote its x2 and its tiers back."""
    # given: a x2 weekend for Gold, its page open in a marketer's browser
    weekend = campaign("Double weekend", starts=2, ends=4, tiers=[tiers["gold"]])
    login("Marketer")
    url = reverse("admin:points_campaign_change", args=[weekend.pk])
    values = form_values(client.get(url).content.decode())
    # and another marketer makes it x3, for Platinum too, meanwhile
    Campaign.objects.filter(pk=weekend.pk).update(multiplier=3)
    weekend.tiers.add(tiers["platinum"])

    # when: this marketer renames it on the page opened before
    assert client.post(url, {**values, "name": "Triple weekend"}).status_code == 302

    # then: both changes stand
    weekend.refresh_from_db()
    assert (weekend.name, weekend.multiplier) == ("Triple weekend", 3)
    assert {tier.code for tier in weekend.tiers.all()} == {"gold", "platinum"}


def test_P3_tiers_changed_on_a_campaign_s_page_are_saved(client, login, tiers, no_campaigns):
    weekend = campaign("Double weekend", starts=2, ends=4, tiers=[tiers["gold"]])
    login("Marketer")
    url = reverse("admin:points_campaign_change", args=[weekend.pk])
    values = form_values(client.get(url).content.decode())

    sent = {**values, "tiers": [str(tiers["silver"].pk)]}
    assert client.post(url, sent).status_code == 302

    assert [tier.code for tier in weekend.tiers.all()] == ["silver"]


def test_P3_a_campaign_opened_for_every_tier_and_channel_keeps_those_another_marketer_set(
    client, login, tiers, no_campaigns
):
    """Found by a review: a page opened with no tier or channel ticked (every one) sends
    nothing for them, and wrote none back over another marketer's Gold and point of sale."""
    weekend = campaign("Double weekend", starts=2, ends=4)
    login("Marketer")
    url = reverse("admin:points_campaign_change", args=[weekend.pk])
    values = form_values(client.get(url).content.decode())
    Campaign.objects.filter(pk=weekend.pk).update(channels=["pos"])
    weekend.tiers.add(tiers["gold"])

    assert client.post(url, {**values, "name": "Gold weekend"}).status_code == 302

    weekend.refresh_from_db()
    assert (weekend.name, weekend.channels) == ("Gold weekend", ["pos"])
    assert [tier.code for tier in weekend.tiers.all()] == ["gold"]


def test_P3_a_campaign_s_page_names_the_tiers_and_stores_another_marketer_saved_meanwhile(
    client, login, tiers, no_campaigns
):
    weekend = campaign("Double weekend", starts=2, ends=4)
    login("Marketer")
    url = reverse("admin:points_campaign_change", args=[weekend.pk])
    values = form_values(client.get(url).content.decode())
    Campaign.objects.filter(pk=weekend.pk).update(stores=["S-1", "S-2"])
    weekend.tiers.add(tiers["gold"], tiers["platinum"])

    page = client.post(url, {**values, "multiplier": "0"})

    assert (
        "Changed while this page was open: Tiers (now Gold, Platinum), Stores (now S-1, S-2)."
        in (page.content.decode())
    )
