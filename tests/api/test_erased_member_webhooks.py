"""Webhooks of a member erased under the privacy tools (rules.md, Erasing a member): the
brand's systems hear nothing more about the account, neither the events waiting when it
was erased nor those of later changes, which would tie the erased account to the
customer by ids they already hold (a receipt, a voucher); and the deliveries page keeps
no customer code of it."""

import importlib
import io
import json
from datetime import datetime, time, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks import Webhook

from api import webhook_endpoints, webhooks
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Member
from members.services import erase_member, merge_members
from points.expiry_selectors import next_cutoff
from points.models import ExpiryPolicy
from points.services import send_expiry_reminders
from rewards.models import Redemption, Reward
from rewards.services import cancel_redemption
from tests.api.conftest import client_for, new_id, post, recently
from tiers.services import degrade_inactive_members

pytestmark = pytest.mark.django_db

ERASED = "Not sent: the member was erased."


def heard(receiver, endpoint) -> list[dict]:
    webhooks.send_due(endpoint_id=endpoint.pk, now=timezone.now() + timedelta(seconds=10))
    signer = Webhook(endpoint.secret)
    return [signer.verify(r.body, r.headers) for r in receiver.received]


def test_an_erased_member_s_waiting_and_later_events_are_not_sent(
    receiver, till, staff, tiers, no_campaigns, degradation
):
    # given: a CRM subscribed to everything; Lucía joins in the app, buys at a till (a
    # tier change, her receipt T-LUCIA-1) and redeems a coffee; so does another customer
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=EventType.values)
    )
    api = client_for(till.secret)
    coffee = Reward.objects.create(name="Coffee", points_cost=100)
    for code in ["M-LUCIA", "M-OTHER"]:
        body = {"external_id": code, "email": f"{code.lower()}@ex.com", "first_name": "Lucía"}
        assert post(api, "/api/v1/members", body).status_code == 201
        purchase = {
            "external_id": f"T-{code}-1",
            "member": code,
            "kind": "purchase",
            "amount": "1200.00",
            "occurred_at": recently(200),
        }
        assert post(api, "/api/v1/transactions", purchase).status_code == 201
        redemption = {"external_id": new_id("R"), "member": code, "reward": coffee.pk}
        assert post(api, "/api/v1/redemptions", redemption).status_code == 201

    # when: she is erased before the sender runs; then her account changes again (the
    # nightly degradation, a cancellation by an agent) and the sender runs
    lucia = Member.objects.get(external_id="M-LUCIA")
    erase_member(member=lucia, by=staff)
    assert degrade_inactive_members() == 2
    cancel_redemption(redemption=Redemption.objects.get(member=lucia), by=staff)
    received = heard(receiver, endpoint)

    # then: the other customer's events went; of hers only the code to forget
    # (member.erased), and each of the others says why
    other = WebhookDelivery.objects.exclude(member_id=lucia.pk)
    assert {event["data"]["member"] for event in received if event["type"] != "member.erased"} == {
        "M-OTHER"
    }
    assert [e["data"]["member"] for e in received if e["type"] == "member.erased"] == ["M-LUCIA"]
    assert len(received) == other.count() + 1
    assert set(other.values_list("status")) == {("delivered",)}
    hers = WebhookDelivery.objects.filter(member_id=lucia.pk).exclude(type="member.erased")
    # joined, tier up, purchase, redemption, degradation, and the cancellation
    assert {"member.enrolled", "redemption.cancelled"} <= set(hers.values_list("type", flat=True))
    assert hers.count() == other.count() + 1
    assert set(hers.values_list("status", "last_error")) == {("failed", ERASED)}


def test_a_resent_delivery_of_an_erased_member_is_not_sent(receiver, make_member, buy, staff):
    # given: a purchase delivered, then the member erased
    member = make_member()
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.TRANSACTION_RECORDED])
    )
    buy(member, 10)
    assert len(heard(receiver, endpoint)) == 1
    erase_member(member=member, by=staff)

    # when: a superuser resends it
    resent = webhooks.resend(WebhookDelivery.objects.all())
    received = heard(receiver, endpoint)

    # then: not sent again, and the page says why
    assert (resent.queued, resent.withdrawn) == (0, 1)
    assert len(received) == 1
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_reminder_withdrawn_by_a_merge_keeps_no_customer_code_once_erased(
    receiver, make_member, buy, staff
):
    # given: an expiry reminder of M-OLD waiting for its retry, then M-OLD merged into
    # M-KEEP (the reminder withdrawn)
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    buy(old, 20, when=timezone.now() - timedelta(hours=1))
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.POINTS_EXPIRING])
    )
    today = timezone.localdate()
    ExpiryPolicy.objects.update(cycle="monthly", starts_on=today)
    cutoff = next_cutoff(ExpiryPolicy.current(), today)
    remind_at = timezone.make_aware(datetime.combine(cutoff - timedelta(days=1), time(9)))
    assert send_expiry_reminders(now=remind_at) == 1
    receiver.answers = [503]
    webhooks.send_due(endpoint_id=endpoint.pk)
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")

    # when: the customer asks to be forgotten
    erase_member(member=Member.objects.get(pk=keep.pk), by=staff)

    # then: the withdrawn delivery says why, and names neither code
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_error) == (
        "failed",
        "Not sent: the reminder was dropped (the account was merged into another).",
    )
    dump = io.StringIO()
    call_command("dumpdata", "core.webhookdelivery", stdout=dump)
    (row,) = json.loads(dump.getvalue())
    assert "M-KEEP" not in json.dumps(row) and "M-OLD" not in json.dumps(row), row


def test_the_upgrade_rewrites_the_reasons_that_named_customer_codes(receiver, member):
    # given: reminders withdrawn by merges before this rule, and another failure
    from django.apps import apps
    from django.db import connection

    upgrade = importlib.import_module("api.migrations.0010_withdrawn_reminders_name_no_code")
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.POINTS_EXPIRING])
    )
    old = "Not sent: the reminder was dropped (M-08812 was merged into M-20417)."
    for subject, (kind, error) in enumerate(
        [("points.expiring", old), ("points.expiring", old), ("points.expiring", "HTTP 500")]
    ):
        WebhookDelivery.objects.create(
            endpoint=endpoint,
            type=kind,
            member_id=member.pk,
            subject_id=subject,
            status="failed",
            last_error=error,
        )

    # when
    upgrade.name_no_code(apps, SimpleNamespace(connection=connection))

    # then
    assert sorted(WebhookDelivery.objects.values_list("last_error", flat=True)) == [
        "HTTP 500",
        "Not sent: the reminder was dropped (the account was merged into another).",
        "Not sent: the reminder was dropped (the account was merged into another).",
    ]
