"""A change made in the CX Manager and its line in the admin's history commit together:
a failure between them (the connection lost, the worker killed) undoes the change, so
that the agent, who saw an error, sends the form again and the points are given once
(found by an audit of failures part-way)."""

import pytest
from django.contrib.admin import ModelAdmin
from django.contrib.admin.models import LogEntry
from django.db import OperationalError
from django.urls import reverse

from points.models import LedgerEntry
from points.services.goodwill import adjust_or_request
from rewards.models import Redemption
from rewards.services import redeem
from tests.conftest import summary
from tests.loyalty_site.cx_pages import assign

pytestmark = pytest.mark.django_db


@pytest.fixture
def history_fails_once(client, monkeypatch):
    """The first history line written fails, as a lost connection would; later ones go."""
    written = ModelAdmin.log_change
    calls = []

    def log_change(self, request, obj, message):
        calls.append(message)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return written(self, request, obj, message)

    monkeypatch.setattr(ModelAdmin, "log_change", log_change)
    client.raise_request_exception = False


def adjustments(member) -> int:
    return LedgerEntry.objects.filter(member=member, kind="adjustment").count()


def test_points_assigned_whose_history_failed_are_not_given_and_sent_again_are_given_once(
    client, login, member, history_fails_once
):
    # given
    login("CX agent")

    # when: the first form fails at its history line; the agent sends a new one
    first = assign(client, member, 250, reason="Parcel late")
    again = assign(client, member, 250, reason="Parcel late")

    # then: given once, and named in the history
    assert (first.status_code, again.status_code) == (503, 302)
    assert (summary(member)["available"], adjustments(member)) == (250, 1)
    assert LogEntry.objects.get(object_id=str(member.pk)).get_change_message() == (
        "Assigned +250 points: Parcel late"
    )


def test_an_approval_whose_history_failed_gives_nothing_until_approved_again(
    client, login, member, maria, limits, history_fails_once
):
    # given: a request above the agent's limit
    made = adjust_or_request(member=member, points=2500, reason="Lost parcel", by=maria)
    login("CX supervisor")
    decision = {"request": made.pk, "decision": "approve", "reason": "Checked the carrier"}

    # when
    first = client.post(reverse("admin:approvals"), decision)
    made.refresh_from_db()
    waiting = (made.status, summary(member)["available"])
    client.post(reverse("admin:approvals"), decision)

    # then
    assert first.status_code == 503 and waiting == ("pending", 0)
    assert (summary(member)["available"], adjustments(member)) == (2500, 1)


def test_a_cancellation_from_the_list_whose_history_failed_refunds_nothing(
    client, admin_user, member, buy, catalogue, history_fails_once
):
    # given: a redemption, cancelled from the redemptions list
    buy(member, 2000)
    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])
    client.force_login(admin_user)
    action = {
        "action": "cancel",
        "_selected_action": [redemption.pk],
        "reason": "Customer changed their mind",
    }

    # when: the first fails at its history line
    first = client.post(reverse("admin:rewards_redemption_changelist"), action)

    # then: not cancelled, no refund; sent again, cancelled once
    redemption.refresh_from_db()
    assert first.status_code == 503 and redemption.status == Redemption.Status.REDEEMED
    client.post(reverse("admin:rewards_redemption_changelist"), action)
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.CANCELLED
    assert LedgerEntry.objects.filter(member=member, kind="refund").count() == 1


def test_a_secret_rotation_whose_history_failed_keeps_the_old_secret(
    client, admin_user, history_fails_once
):
    # given: an endpoint whose receiver holds its secret
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    from api import webhook_endpoints
    from core.models import WebhookEndpoint

    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url="https://crm.example.com/hooks", events=["member.tier_changed"])
    )
    held = endpoint.secret
    client.force_login(admin_user)
    rotate = {"action": "rotate", ACTION_CHECKBOX_NAME: [endpoint.pk]}

    # when: the rotation fails at its history line, never showing the new secret
    first = client.post(reverse("admin:api_webhookendpoint_changelist"), rotate)

    # then: the secret the receiver holds still signs alone; the next rotation is the one
    endpoint.refresh_from_db()
    assert first.status_code == 503 and (endpoint.secret, endpoint.previous_secret) == (held, "")
    client.post(reverse("admin:api_webhookendpoint_changelist"), rotate)
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == held


def test_a_freeze_whose_history_failed_is_not_made(client, login, member, history_fails_once):
    # given
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    login("CX supervisor")
    until = timezone.localdate() + timedelta(days=30)
    form = {"freeze-until": until.isoformat(), "freeze-reason": "Illness"}

    # when: the first fails at its history line; the supervisor sends a new form
    first = client.post(
        reverse("admin:members_member_freeze", args=[member.pk]),
        {**form, "freeze-token": uuid.uuid4()},
    )
    member.refresh_from_db()
    frozen_then = member.frozen_until

    # then: not frozen by the failed one; frozen, and in the history, by the next
    assert first.status_code == 503 and frozen_then is None
    client.post(
        reverse("admin:members_member_freeze", args=[member.pk]),
        {**form, "freeze-token": uuid.uuid4()},
    )
    member.refresh_from_db()
    assert member.frozen_until is not None
    assert "Illness" in LogEntry.objects.get(object_id=str(member.pk)).get_change_message()


def test_an_erasure_whose_history_failed_erases_nothing(
    client, admin_user, member, history_fails_once
):
    client.force_login(admin_user)
    erase = {"action": "erase", "_selected_action": [member.pk], "confirm": "yes"}

    first = client.post(reverse("admin:members_member_changelist"), erase)

    member.refresh_from_db()
    assert first.status_code == 503 and member.erased_at is None
