"""What a receiver's answer asks of the sender (Standard Webhooks, "Delivery success and
failure"): 410 Gone switches its endpoint off; 429, 502, 503 and 504 end the round, so
that a receiver under load is not sent the rest at once; a Retry-After puts the retry
back as asked."""

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from api import webhook_endpoints, webhooks
from core import events
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import TierChange
from tests.api.test_audit_webhooks_keys import messages_of, resend
from tests.api.test_webhooks import send, subscribe
from tests.conftest import postgres_only, session_of_its_own

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


@pytest.fixture
def endpoint(receiver):
    return subscribe(receiver, EventType.TRANSACTION_RECORDED)


def test_a_receiver_answering_410_gone_has_its_endpoint_switched_off_until_switched_on(
    receiver, endpoint, make_member, buy, admin_client
):
    # given: two members' purchases waiting to be told
    first, second = buy(make_member(), 10), buy(make_member(), 20)
    receiver.answers = [410]

    # when: the receiver answers the first 410 Gone
    send(endpoint)

    # then: nothing more is posted to it, and the endpoint is off, saying why
    assert len(receiver.received) == 1
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    assert "answered 410 Gone" in endpoint.switched_off_reason
    for page in ("changelist", "change"):
        args = [endpoint.pk] if page == "change" else []
        shown = admin_client.get(reverse(f"admin:api_webhookendpoint_{page}", args=args))
        assert "answered 410 Gone" in shown.content.decode()
    # and: a later purchase is not queued for it; both waiting events still are
    buy(make_member(), 30)
    send(endpoint, now=timezone.now() + timedelta(hours=1))
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.filter(status=Status.PENDING).count() == 2

    # when: a superuser switches it on again, the receiver back
    admin_client.post(
        reverse("admin:api_webhookendpoint_change", args=[endpoint.pk]),
        {"url": endpoint.url, "events": endpoint.events, "is_active": "on"},
    )
    send(endpoint, now=timezone.now() + timedelta(minutes=1))

    # then: the waiting events go, in order, and the reason is gone
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.switched_off_reason) == (True, "")
    told = [json.loads(r.body)["data"]["external_id"] for r in receiver.received[1:]]
    assert told == [first.external_id, second.external_id]
    assert not WebhookDelivery.objects.filter(status=Status.PENDING).exists()


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_an_answer_asking_to_slow_down_ends_the_round(receiver, endpoint, make_member, buy, code):
    # given: three members' purchases waiting
    for amount in (10, 20, 30):
        buy(make_member(), amount)
    receiver.answers = [code]

    # when
    send(endpoint)

    # then: one post, the other two wait for the next round, untried
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.filter(attempts=0, status=Status.PENDING).count() == 2
    # and the next round sends them
    send(endpoint, now=timezone.now() + timedelta(seconds=1))
    assert len(receiver.received) == 3


@pytest.mark.parametrize(
    "retry_after, waited",
    [
        ("600", timedelta(minutes=10)),
        ("in a while", timedelta(seconds=5)),  # unreadable: the backoff's own 5 s
        ("2", timedelta(seconds=5)),  # shorter than the backoff: the backoff
        ("999999999", timedelta(days=1)),  # at most a day
        ("9" * 5000, timedelta(days=1)),  # more digits than Python reads into an int
        ("²", timedelta(seconds=5)),
        # a date of a year no datetime holds (found by a review: every round failed)
        ("Mon, 1 Jan 99999999999999999999 0:0:0 GMT", timedelta(seconds=5)),
    ],
)
def test_a_retry_after_puts_the_retry_back_as_asked(
    receiver, endpoint, member, buy, retry_after, waited
):
    buy(member, 10)
    receiver.answers, receiver.retry_after = [503], retry_after
    send(endpoint)
    delivery = WebhookDelivery.objects.get()
    assert delivery.next_attempt_at - delivery.last_attempt_at == waited


def test_an_answer_whose_reason_holds_a_nul_is_a_failed_attempt_as_any_other(
    receiver, endpoint, member, buy
):
    """Found by a review: PostgreSQL refused to save the attempt (a NUL in text), so the
    delivery was posted again every round, never backing off nor failing."""
    buy(member, 10)
    receiver.answers, receiver.reason = [500], "Bad\x00Gateway"
    send(endpoint)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.attempts, delivery.last_error) == (1, "HTTP 500 BadGateway")
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=5)


def test_a_retry_after_as_a_date_puts_the_retry_back_to_that_time(receiver, endpoint, member, buy):
    buy(member, 10)
    then = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    receiver.answers, receiver.retry_after = [429], format_datetime(then, usegmt=True)
    send(endpoint)
    assert WebhookDelivery.objects.get().next_attempt_at == then


def test_one_slow_answer_among_others_holds_up_only_its_own_member(
    receiver, endpoint, make_member, buy, settings
):
    # given: four members' purchases; the receiver answers, but the second post too late
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    for amount in (10, 20, 30, 40):
        buy(make_member(), amount)
    receiver.waits = [0, 2]

    # when: one round
    send(endpoint)

    # then: the other three delivered in it; the slow one waits for its retry
    assert len(receiver.received) == 4
    assert WebhookDelivery.objects.filter(status=Status.DELIVERED).count() == 3
    assert WebhookDelivery.objects.get(status=Status.PENDING).last_error == "No answer in time"


def test_a_receiver_that_stops_answering_mid_round_holds_its_sender_for_two_timeouts(
    receiver, endpoint, make_member, buy, settings
):
    # given: the receiver answers the first post, then none
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    for amount in (10, 20, 30, 40, 50):
        buy(make_member(), amount)
    receiver.waits, receiver.hang_seconds = [0], 2

    # when
    send(endpoint)

    # then: the round ends at the second post without an answer
    assert len(receiver.received) == 3
    assert WebhookDelivery.objects.filter(attempts=0).count() == 2


def test_a_receiver_asking_for_a_wait_gets_nothing_until_then(receiver, endpoint, make_member, buy):
    # given: three members' purchases; the receiver is down for maintenance for an hour
    for amount in (10, 20, 30):
        buy(make_member(), amount)
    receiver.answers, receiver.retry_after = [503], "3600"
    now = timezone.now()

    # when: rounds go on every few seconds
    for later in (0, 5, 10, 600):
        send(endpoint, now=now + timedelta(seconds=later))

    # then: one post in that hour; after it, the three go
    assert len(receiver.received) == 1
    send(endpoint, now=now + timedelta(seconds=3700))
    assert len(receiver.received) == 4
    assert WebhookDelivery.objects.filter(status=Status.DELIVERED).count() == 3


def test_a_late_answer_at_a_batch_s_start_after_an_answered_post_holds_no_one_else(
    receiver, endpoint, make_member, buy, settings, monkeypatch
):
    # given: batches of two; the third post (the second batch's first) answers too late
    monkeypatch.setattr(webhooks, "BATCH", 2)
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    for amount in (10, 20, 30, 40):
        buy(make_member(), amount)
    receiver.waits = [0, 0, 2]

    # when: one round
    send(endpoint)

    # then: the round went on past it
    assert len(receiver.received) == 4
    assert WebhookDelivery.objects.filter(status=Status.DELIVERED).count() == 3


def test_a_page_opened_before_the_endpoint_was_switched_off_keeps_it_off(
    receiver, endpoint, member, buy, admin_client
):
    # given: a superuser opens the endpoint's page; meanwhile the receiver answers 410
    url = reverse("admin:api_webhookendpoint_change", args=[endpoint.pk])
    form = admin_client.get(url).context["adminform"].form
    buy(member, 10)
    receiver.answers = [410]
    send(endpoint)

    # when: the page is saved with its description changed, "active" ticked as it was
    sent = {"url": endpoint.url, "description": "CRM", "events": endpoint.events, "is_active": "on"}
    for name, field in form.fields.items():
        if field.show_hidden_initial:
            shown = field.hidden_widget().format_value(form.initial[name])
            sent[form.add_initial_prefix(name)] = "" if shown is None else shown
    admin_client.post(url, sent)

    # then: the description is saved, and the endpoint stays off, saying why
    endpoint.refresh_from_db()
    assert (endpoint.description, endpoint.is_active) == ("CRM", False)
    assert "answered 410 Gone" in endpoint.switched_off_reason


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # another session's lock
def test_a_sender_waits_for_a_bulk_event_another_worker_is_expanding(receiver, member, buy):
    """Found by a review: a sender skipped the bulk event another worker was writing the
    deliveries of (a threshold change's), and sent the member's purchase recorded after it
    first."""
    # given: the member's tier change, reported in bulk, then their purchase
    endpoint = subscribe(receiver, EventType.MEMBER_TIER_CHANGED, EventType.TRANSACTION_RECORDED)
    events.record_bulk(EventType.MEMBER_TIER_CHANGED, TierChange, member_id=member.pk)
    buy(member, 10)
    expanding = session_of_its_own()

    # when: another worker is expanding the bulk event as the sender runs
    with expanding:
        expanding.execute("SELECT 1 FROM core_bulkevent FOR UPDATE")
        send(endpoint)

        # then: nothing is sent before it
        assert receiver.received == []

    # and once it is written, the next round sends the member's events in their order
    send(endpoint)
    types = [json.loads(got.body)["type"] for got in receiver.received]
    assert types[-1] == EventType.TRANSACTION_RECORDED


def test_an_endpoint_saved_from_a_page_keeps_its_sender_s_hold_and_its_new_secret(receiver):
    """Found by a review: saving an endpoint wrote back the page's copy of every column, so a
    save while a sender held it freed it for a second sender, and a save after a rotation
    brought the old secret back."""
    # given: a superuser opens the endpoint's page; meanwhile its secret is rotated and
    # a sender takes it
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    page = WebhookEndpoint.objects.get(pk=endpoint.pk)
    rotated = webhook_endpoints.rotate_secret(WebhookEndpoint.objects.get(pk=endpoint.pk))
    held = timezone.now() + timedelta(minutes=1)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(sending_until=held)

    # when: the page is saved with a new description
    page.description = "The CRM"
    webhook_endpoints.save_endpoint(page)

    # then: the description is saved; the hold and the rotated secret are as they were
    saved = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (saved.description, saved.sending_until, saved.secret) == ("The CRM", held, rotated)


def test_a_sender_whose_hold_another_took_stops_and_leaves_it_held(
    receiver, endpoint, make_member, buy, monkeypatch
):
    """Found by a review: a round that outlasted its hold (a post to a name with many dead
    addresses) went on beside the sender that took the endpoint, then freed it for a
    third."""
    # given: two members' purchases, sent one a batch; during the first post another
    # sender takes the endpoint, the first's hold having run out
    buy(make_member(), 10), buy(make_member(), 20)
    monkeypatch.setattr(webhooks, "BATCH", 1)
    taken = timezone.now() + timedelta(minutes=2)
    sent = webhooks._send

    def outlasting(held, batch, deadline, answered_last):
        answer = sent(held, batch, deadline, answered_last)
        WebhookEndpoint.objects.filter(pk=batch[0].endpoint_id).update(sending_until=taken)
        return answer

    monkeypatch.setattr(webhooks, "_send", outlasting)

    # when: the first sender's round goes on
    webhooks.send_due(endpoint_id=endpoint.pk)

    # then: it stopped after its batch, and the other sender still holds the endpoint
    assert len(receiver.received) == 1
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).sending_until == taken


def test_a_superuser_s_resend_lifts_the_pause_a_receiver_asked_for(
    receiver, endpoint, member, buy, admin_client
):
    """Found by a review: after a 429 with a day's Retry-After, "Resend" said "sent within
    a few seconds", and nothing went for a day, nor could anything in the CX Manager
    lift the pause."""
    # given: the receiver asked for a day's wait, then recovered
    buy(member, 10)
    receiver.answers, receiver.retry_after = [429], "99999999999999"
    send(endpoint)
    endpoint.refresh_from_db()
    assert endpoint.paused_until > timezone.now() + timedelta(hours=23)
    receiver.answers = []

    # when: a superuser resends the delivery
    page = resend(admin_client, WebhookDelivery.objects.get())

    # then: it goes in the next round, as the page says
    assert any("sent within a few seconds" in said for said in messages_of(page))
    send(endpoint, now=timezone.now() + timedelta(seconds=1))
    assert len(receiver.received) == 2
    assert WebhookDelivery.objects.get().status == Status.DELIVERED
