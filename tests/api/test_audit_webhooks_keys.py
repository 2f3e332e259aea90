"""Audit h1: webhooks (endpoints, sending, deliveries, resend) and API keys in the CX
Manager, as a superuser and a receiver see them. Each test names the rule it protects
and fails on the code as audited."""

import tracemalloc
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from api import webhook_endpoints, webhooks
from api.models import ApiKey
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.services import merge_members
from points.expiry_selectors import next_cutoff
from points.models import ExpiryPolicy
from points.services import send_expiry_reminders
from tests.api.receiver import serving

pytestmark = pytest.mark.django_db

ADD = "admin:api_webhookendpoint_add"
DELIVERIES = "admin:api_webhookdelivery_changelist"
OWN = "127.0.0.1:8000"  # where the CX Manager is reached in these tests


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def add_endpoint(client, url, events=("transaction.recorded",), host=OWN):
    return client.post(
        reverse(ADD),
        {"url": url, "description": "CRM", "events": list(events), "is_active": "on"},
        follow=True,
        HTTP_HOST=host,
    )


def messages_of(page) -> list[str]:
    return [str(m) for m in page.context["messages"]]


def resend(client, *deliveries):
    return client.post(
        reverse(DELIVERIES),
        {"action": "resend", ACTION_CHECKBOX_NAME: [d.pk for d in deliveries]},
        follow=True,
    )


# Endpoints: "Addresses ... that point back at the programme itself (however its name is
# written ...) are refused when the endpoint is saved" (docs/rules.md, Webhooks).


def test_an_address_that_reaches_the_application_through_a_backslash_is_refused(
    superuser_client, settings
):
    # urlsplit reads the host of this URL as crm.example.com; requests (urllib3) ends the
    # authority at the backslash and posts to 127.0.0.1:8000, the application itself.
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    url = f"http://{OWN}\\@crm.example.com/hooks"
    assert requests.Request("POST", url).prepare().url.startswith(f"http://{OWN}/")

    page = add_endpoint(superuser_client, url)

    assert page.status_code == 200
    assert "is this application: it cannot send events to itself" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_application_written_as_an_ipv4_mapped_ipv6_address_is_still_itself(
    superuser_client, settings
):
    # [::ffff:127.0.0.1] is 127.0.0.1 written as an IPv6 address: a post to it reaches
    # the application at 127.0.0.1:8000.
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    for url in [
        "http://[::ffff:127.0.0.1]:8000/api/v1/members",
        "http://[::ffff:7f00:1]:8000/admin/",
    ]:
        page = add_endpoint(superuser_client, url)
        assert "is this application: it cannot send events to itself" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_address_the_sender_cannot_post_to_is_refused_in_words(superuser_client):
    # A host typed with full-width letters (an IME): the form takes it, but every post to
    # it fails in requests ("not a valid IDNA label") and is retried for a day.
    url = "https://\uff43\uff52\uff4d.example.com/hooks"  # "ｃｒｍ.example.com"
    page = add_endpoint(superuser_client, url)
    saved = list(WebhookEndpoint.objects.values_list("url", flat=True))
    for stored in saved:
        requests.Request("POST", stored).prepare()  # raises InvalidURL on the code audited
    assert page.status_code == 200


# Resend: "The admin lists deliveries ... and can resend them" (DESIGN.md, Webhooks).


def test_resend_never_sends_a_withdrawn_reminder_without_its_data(
    superuser_client, receiver, make_member, buy, staff
):
    # given a points.expiring event withdrawn because its member was merged (M5): failed,
    # "Not sent: the reminder was dropped (...)"
    survivor, duplicate = make_member(), make_member()
    today = timezone.localdate()
    buy(duplicate, 20, when=timezone.now() - timedelta(hours=1))
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.POINTS_EXPIRING])
    )
    ExpiryPolicy.objects.update(cycle="monthly", starts_on=today)
    cutoff = next_cutoff(ExpiryPolicy.current(), today)
    remind_at = timezone.make_aware(datetime.combine(cutoff - timedelta(days=1), time(9)))
    assert send_expiry_reminders(now=remind_at) == 1
    receiver.answers = [503]
    webhooks.send_due(endpoint_id=endpoint.pk)
    merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="Two cards")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and delivery.last_error.startswith("Not sent")
    receiver.received.clear()

    # when a superuser resends it and the sender runs
    resend(superuser_client, delivery)
    webhooks.send_due(endpoint_id=endpoint.pk, now=timezone.now() + timedelta(seconds=10))

    # then the receiver never gets a reminder with no member, cutoff or points
    assert [r.body for r in receiver.received if b'"deleted"' in r.body] == []
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_a_resend_clicked_while_the_delivery_is_in_flight_is_not_lost(
    superuser_client, receiver, member, buy, monkeypatch
):
    # given a delivery on its last try (ten failed attempts behind it)
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.TRANSACTION_RECORDED])
    )
    buy(member, 10)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=len(webhooks.RETRY_DELAYS))
    real_post = webhooks.post_within

    def post_while_resent(*args, **kwargs):
        # the superuser presses "Resend" while this attempt is on the wire
        page = resend(superuser_client, delivery)
        assert "1 deliveries queued again" in " ".join(messages_of(page))
        return real_post(*args, **kwargs)

    monkeypatch.setattr(webhooks, "post_within", post_while_resent)

    # when that attempt fails
    receiver.answers = [503]
    webhooks.send_due(endpoint_id=endpoint.pk)

    # then the delivery was queued again, as the page said: not failed for good (the
    # same run may have sent it again since)
    delivery.refresh_from_db()
    assert delivery.status in ("pending", "delivered"), (delivery.status, delivery.attempts)
    assert delivery.attempts <= 1


def test_a_resend_clicked_while_an_attempt_that_succeeds_is_in_flight_sends_it_again(
    superuser_client, receiver, member, buy, monkeypatch
):
    # given a delivery on a retry (three failed attempts behind it)
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.TRANSACTION_RECORDED])
    )
    buy(member, 10)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=3)
    real_post, clicked = webhooks.post_within, []

    def post_while_resent(*args, **kwargs):
        if not clicked:  # the superuser presses "Resend" while this attempt is on the wire
            clicked.append(resend(superuser_client, delivery))
        return real_post(*args, **kwargs)

    monkeypatch.setattr(webhooks, "post_within", post_while_resent)

    # when that attempt is answered 200
    webhooks.send_due(endpoint_id=endpoint.pk)

    # then the resend stands, as rules.md says ("stays queued, whatever that attempt's
    # answer"): the receiver gets the event again, on a fresh first attempt
    assert len(receiver.received) == 2
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)


def test_resend_does_not_promise_a_send_for_an_endpoint_that_is_switched_off(
    superuser_client, member, buy
):
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(
            url="https://crm.example.com/hooks", events=[EventType.TRANSACTION_RECORDED]
        )
    )
    buy(member, 10)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=11)
    endpoint.is_active = False
    webhook_endpoints.save_endpoint(endpoint)

    page = resend(superuser_client, delivery)

    # the sender never takes an inactive endpoint's deliveries (api.webhooks.send_due)
    said = " ".join(messages_of(page))
    assert "sent within a few seconds" not in said, said
    assert "not active" in said or "switched off" in said, said


# The sender: "a receiver answering ... huge bodies" must not take the worker down.


def test_a_receiver_answering_a_huge_body_does_not_fill_the_senders_memory(member, buy):
    size = 64 * 1024 * 1024  # a 200 with 64 MB of body: the sender only needs the code

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", str(size))
            self.end_headers()
            chunk = b"x" * (1 << 20)
            try:
                for _ in range(size >> 20):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the sender hung up: what it should do

        def log_message(self, *args):
            pass

    server = serving(Handler)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        endpoint = webhook_endpoints.save_endpoint(
            WebhookEndpoint(url=url, events=[EventType.TRANSACTION_RECORDED])
        )
        buy(member, 10)
        tracemalloc.start()
        try:
            webhooks.send_due(endpoint_id=endpoint.pk)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        server.shutdown()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert peak < 16 * 1024 * 1024, f"the sender held {peak / 2**20:.0f} MB of the answer"


# API keys: "Superusers create keys ... see the key once, and can ... give it an expiry"
# (DESIGN.md, Integration API).


def test_a_key_cannot_be_created_already_expired(superuser_client):
    page = superuser_client.post(
        reverse("admin:api_apikey_add"),
        {
            "name": "Till 9",
            "channel": "pos",
            "store": "STORE-09",
            "expiry_date_0": "2020-01-01",
            "expiry_date_1": "00:00:00",
        },
        follow=True,
    )
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="id_expiry_date_error"' in body  # the error names the expiry field
    assert "Store it now" not in body
    assert not ApiKey.objects.exists()
