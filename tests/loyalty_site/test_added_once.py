"""Every add form of the CX Manager is applied once (found by an audit: "Add campaign"
sent twice from two tabs added two campaigns, and a purchase earned x3 twice)."""

import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from points.models import Campaign
from rewards.models import Reward
from tests.conftest import postgres_only, run_together
from tests.points.test_campaign_admin import posted

pytestmark = pytest.mark.django_db

ADD = reverse("admin:points_campaign_add")


def token_of(page) -> str:
    return re.search(r'name="_once" value="([^"]+)"', page.content.decode()).group(1)


def test_an_add_form_sent_twice_adds_once_and_says_so(client, login, no_campaigns):
    # given: the form as a marketer opened it
    login("Marketer")
    form = {**posted("Double click x3", multiplier="3"), "_once": token_of(client.get(ADD))}

    # when: sent, then sent again (a refresh, the browser's back and send)
    first = client.post(ADD, form)
    again = client.post(ADD, form, follow=True)

    # then: one campaign; the second is told nothing was added
    assert first.status_code == 302
    assert Campaign.objects.filter(name="Double click x3").count() == 1
    said = [str(m) for m in again.context["messages"]]
    assert "This form was already sent: nothing was added twice." in said


def test_an_add_form_refused_keeps_its_token_for_the_corrected_form(client, login, tiers):
    # given: a reward form the marketer first sends with a cost of 0
    login("Marketer")
    add = reverse("admin:rewards_reward_add")
    form = {"name": "Tote bag", "points_cost": "0", "voucher_valid_days": "90", "_once": ""}
    form["_once"] = token_of(client.get(add))

    # when: refused, then corrected and sent again
    refused = client.post(add, form)
    corrected = client.post(add, {**form, "points_cost": "500"})

    # then: the page came back with the same token, and the corrected form is added
    assert refused.status_code == 200 and token_of(refused) == form["_once"]
    assert corrected.status_code == 302
    assert Reward.objects.filter(name="Tote bag").count() == 1


# SQLite's test database is in memory, where a second writer fails at once instead of
# waiting as it does on the file of `make run`.
@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_add_form_sent_twice_at_once_adds_once(django_user_model, no_campaigns):
    # given: one marketer's form, open in two tabs
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketer"))
    client = Client(raise_request_exception=False)
    client.force_login(user)
    form = {**posted("Double click x3", multiplier="3"), "_once": token_of(client.get(ADD))}

    # when: both sent at the same moment
    codes = run_together(2, lambda i: client.post(ADD, form).status_code)

    # then: one campaign, and no error page
    assert codes == [302, 302]
    assert Campaign.objects.filter(name="Double click x3").count() == 1
