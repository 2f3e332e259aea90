"""A voucher's code is money at a till: the agent who redeems reads it to the customer,
but the member's admin history, which everyone who may view members reads (Operations
too, to whom codes are never shown), names the redemption, not its code (security
audit)."""

import uuid
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse

from points.services import adjust_points
from rewards.models import Redemption, Reward

pytestmark = pytest.mark.django_db


@pytest.fixture
def coffee(tiers):
    return Reward.objects.create(name="Coffee voucher", points_cost=150)


def history(client, member) -> str:
    response = client.get(reverse("admin:members_member_history", args=[member.pk]))
    assert response.status_code == 200
    return response.content.decode()


def operations(django_user_model) -> Client:
    user = django_user_model.objects.create_user("ops", is_staff=True)
    user.groups.add(Group.objects.get(name="Operations"))
    client = Client()
    client.force_login(user)
    return client


def test_the_member_history_names_a_redemption_without_its_voucher_code(
    client, login, member, coffee, django_user_model
):
    # given: an agent redeems a coffee voucher for the member from the member page
    agent = login("CX agent")
    adjust_points(member=member, points=1_000, reason="Test", by=agent)
    done = client.post(
        reverse("admin:members_member_redeem", args=[member.pk]),
        {
            "reward": coffee.pk,
            "token": uuid.uuid4(),
            "cost": "150",
            "valid_days": "90",
            "_confirm": "1",
        },
        follow=True,
    )
    redemption = Redemption.objects.get(member=member)

    # when: Operations read the member's history
    read = history(operations(django_user_model), member)

    # then: the agent was told the code; the history names the redemption only
    told = " ".join(str(m) for m in done.context["messages"])
    assert redemption.shown_code in told
    assert f"Redeemed Coffee voucher (redemption {redemption.pk})" in read
    assert redemption.shown_code not in read and redemption.code not in read


def test_the_upgrade_takes_the_codes_out_of_the_notes_written_before(
    login, member, django_user_model
):
    # given: notes as the member page wrote them before, and another note
    agent = login("CX agent")
    for message in [
        "Redeemed Coffee voucher: voucher AVJ5-4X3P-3C74-XJ8Y, valid until 6 Mar 2027",
        "Redeemed 5 euro voucher: voucher K7QM-2R9T-WX4C-HN3P, valid until 14 Dec 2026",
        "Assigned +100 points: goodwill, voucher AVJ5 mentioned by the customer",
    ]:
        LogEntry.objects.log_actions(agent.pk, [member], action_flag=2, change_message=message)
    upgrade = import_module("loyalty_site.migrations.0017_voucher_codes_out_of_member_history")

    # when
    upgrade.remove_voucher_codes(apps, SimpleNamespace(connection=connection))

    # then
    read = history(operations(django_user_model), member)
    assert "AVJ5-4X3P" not in read and "K7QM" not in read
    assert "Redeemed Coffee voucher" in read and "Redeemed 5 euro voucher" in read
    assert "voucher AVJ5 mentioned by the customer" in read
