"""member.erased (rules.md, Erasing a member): an endpoint that asks for it hears which
customer codes to forget, one event per account the erasure erased, with the code as it
was before; the code kept for it goes once the delivery is delivered or given up."""

import io
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from api import webhook_endpoints, webhooks
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Member
from members.services import erase_member, merge_members

pytestmark = pytest.mark.django_db

ERASED = "Not sent: the member was erased."
DELIVERIES = "admin:api_webhookdelivery_changelist"


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def subscribe(receiver, *events, active=True):
    return webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=list(events), is_active=active)
    )


def heard(receiver, endpoint, *, now=None) -> list[dict]:
    now = now or timezone.now() + timedelta(seconds=10)
    webhooks.send_due(endpoint_id=endpoint.pk, now=now)
    signer = Webhook(endpoint.secret)
    return [signer.verify(r.body, r.headers) for r in receiver.received]


def no_code_kept(*codes) -> bool:
    """No delivery row, as a database dump shows it, holds any of these codes."""
    dump = io.StringIO()
    call_command("dumpdata", "core.webhookdelivery", stdout=dump)
    return not any(code in dump.getvalue() for code in codes)


def test_the_crm_hears_each_code_of_the_erased_customer_as_it_was_before(
    receiver, make_member, staff
):
    # given: a CRM that asked for member.erased, a messaging tool that did not; Ana's
    # old account M-ANA-OLD merged into M-ANA
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    other = subscribe(receiver, EventType.MEMBER_TIER_CHANGED)
    ana, old = make_member("M-ANA"), make_member("M-ANA-OLD")
    merge_members(survivor=ana, duplicate=old, by=staff, reason="Two cards")
    WebhookDelivery.objects.all().delete()  # the merge's tier changes: not this test's

    # when: Ana asks to be forgotten
    erase_member(member=Member.objects.get(pk=ana.pk), by=staff)
    received = heard(receiver, crm)

    # then: one event per account, with the code the CRM knows and the account it went to
    assert [event["type"] for event in received] == ["member.erased", "member.erased"]
    data = {event["data"]["member"]: event["data"] for event in received}
    assert set(data) == {"M-ANA", "M-ANA-OLD"}
    assert data["M-ANA"]["merged_into"] is None
    assert data["M-ANA-OLD"]["merged_into"] == "M-ANA"
    erased_at = Member.objects.get(pk=ana.pk).erased_at
    assert data["M-ANA"]["erased_at"] == erased_at.isoformat()
    assert all(set(event) == {"type", "timestamp", "data"} for event in received)
    assert not WebhookDelivery.objects.filter(endpoint=other).exists()


def test_an_old_account_erased_on_its_own_names_the_account_the_customer_keeps(
    receiver, make_member, staff
):
    # given: M-OLD merged into M-KEEP
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    keep, old = make_member("M-KEEP"), make_member("M-OLD")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")

    # when: only the old account is erased
    erase_member(member=Member.objects.get(pk=old.pk), by=staff)

    # then
    (event,) = heard(receiver, crm)
    assert (event["data"]["member"], event["data"]["merged_into"]) == ("M-OLD", "M-KEEP")


def test_the_erased_member_s_waiting_events_stay_withheld_and_member_erased_goes(
    receiver, member, buy, staff
):
    # given: a purchase of the member's still waiting when they are erased
    crm = subscribe(receiver, EventType.TRANSACTION_RECORDED, EventType.MEMBER_ERASED)
    code = member.external_id
    buy(member, 10)

    # when
    erase_member(member=member, by=staff)
    received = heard(receiver, crm)

    # then: only the erasure is heard, with the code before
    assert [(e["type"], e["data"]["member"]) for e in received] == [("member.erased", code)]
    assert dict(WebhookDelivery.objects.values_list("type", "last_error")) == {
        "transaction.recorded": ERASED,
        "member.erased": "",
    }


def test_a_rolled_back_erasure_tells_nothing(receiver, member, staff):
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    with pytest.raises(RuntimeError), transaction.atomic():
        erase_member(member=member, by=staff)
        raise RuntimeError("the caller's transaction fails")
    assert heard(receiver, crm) == []
    assert not WebhookDelivery.objects.exists()


def test_the_code_is_removed_once_delivered_and_a_resend_sends_nothing(
    receiver, member, staff, superuser_client
):
    # given: the erasure delivered to the CRM
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    code = member.external_id
    erase_member(member=member, by=staff)
    assert len(heard(receiver, crm)) == 1
    delivery = WebhookDelivery.objects.get()

    # then: the code is kept nowhere, and the list and the delivery's page say why
    assert delivery.status == "delivered"
    assert no_code_kept(code)
    listed = superuser_client.get(reverse(DELIVERIES)).content.decode()
    assert "200; customer code removed" in listed
    page = superuser_client.get(reverse("admin:api_webhookdelivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    assert "Scrubbed: the customer code it sent was removed" in page.content.decode()

    # when: a superuser resends it
    done = superuser_client.post(
        reverse(DELIVERIES), {"action": "resend", ACTION_CHECKBOX_NAME: [delivery.pk]}, follow=True
    )

    # then: not queued, said so, and nothing sent without the code
    assert done.status_code == 200
    assert "1 deliveries not resent" in done.content.decode()
    assert len(heard(receiver, crm)) == 1
    assert WebhookDelivery.objects.get().status == "delivered"


def test_a_pending_erasure_resent_goes_with_its_code(receiver, member, staff):
    # given: the CRM down when the erasure is sent
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    code = member.external_id
    erase_member(member=member, by=staff)
    receiver.answers = [503]
    heard(receiver, crm, now=timezone.now())
    assert WebhookDelivery.objects.get().status == "pending"

    # when: resent while it waits for its retry
    resent = webhooks.resend(WebhookDelivery.objects.all())
    received = heard(receiver, crm)

    # then
    assert (resent.queued, resent.withdrawn) == (1, 0)
    assert [event["data"]["member"] for event in received] == [code, code]
    assert no_code_kept(code)


def test_the_code_is_removed_when_the_delivery_is_given_up(receiver, member, staff):
    # given: an erasure at its last attempt
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    code = member.external_id
    erase_member(member=member, by=staff)
    WebhookDelivery.objects.update(attempts=len(webhooks.RETRY_DELAYS))
    receiver.answers = [500]

    # when: it fails again
    heard(receiver, crm)

    # then: failed, and the code is gone
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("failed", 500)
    assert no_code_kept(code)


def test_an_endpoint_switched_off_keeps_the_code_for_a_limited_time(receiver, member, staff):
    # given: the erasure waiting for an endpoint switched off
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    code = member.external_id
    erase_member(member=member, by=staff)
    WebhookEndpoint.objects.filter(pk=crm.pk).update(is_active=False)

    # when: the daily job runs before the limit, then after it
    soon = timezone.now() + timedelta(days=webhooks.ERASED_CODE_DAYS - 1)
    assert webhooks.give_up_erased_codes(now=soon) == 0
    later = timezone.now() + timedelta(days=webhooks.ERASED_CODE_DAYS, minutes=1)
    assert webhooks.give_up_erased_codes(now=later) == 1

    # then: given up, saying why, and the code is gone; switched on, nothing is sent
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.last_error == "Not sent within 30 days (the endpoint is switched off)."
    assert no_code_kept(code)
    WebhookEndpoint.objects.filter(pk=crm.pk).update(is_active=True)
    assert heard(receiver, crm) == []


def test_a_superuser_can_choose_member_erased_for_an_endpoint(superuser_client):
    page = superuser_client.post(
        reverse("admin:api_webhookendpoint_add"),
        {
            "url": "https://crm.example.com/hooks",
            "events": ["member.erased"],
            "is_active": "on",
        },
        follow=True,
    )
    assert page.status_code == 200
    assert WebhookEndpoint.objects.get().events == ["member.erased"]


def test_the_daily_job_that_removes_the_codes_is_scheduled():
    from django_celery_beat.models import PeriodicTask

    from api.tasks import give_up_erased_codes_task

    row = PeriodicTask.objects.get(name="Remove erased customers' codes from waiting webhooks")
    assert row.task == "api.tasks.give_up_erased_codes_task" and row.crontab.hour == "4"
    assert give_up_erased_codes_task() == 0


def test_erasing_several_members_from_the_list_tells_each_code_once(
    receiver, make_member, staff, superuser_client
):
    # given: M-OLD merged into M-KEEP, and another customer
    crm = subscribe(receiver, EventType.MEMBER_ERASED)
    old, keep, solo = make_member("M-OLD"), make_member("M-KEEP"), make_member("M-SOLO")
    merge_members(survivor=keep, duplicate=old, by=staff, reason="Two cards")

    # when: the three are selected and erased together
    superuser_client.post(
        reverse("admin:members_member_changelist"),
        {"action": "erase", ACTION_CHECKBOX_NAME: [old.pk, keep.pk, solo.pk], "confirm": "yes"},
    )

    # then
    received = heard(receiver, crm)
    assert sorted((e["data"]["member"], e["data"]["merged_into"]) for e in received) == [
        ("M-KEEP", None),
        ("M-OLD", "M-KEEP"),
        ("M-SOLO", None),
    ]
