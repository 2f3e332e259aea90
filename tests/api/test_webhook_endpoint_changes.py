"""A superuser's change to an endpoint while its sender is at work, and receivers on the
brand's own network (found by a review): a post goes as the endpoint was a second ago."""

import time

import pytest
from standardwebhooks import Webhook

from api import webhook_endpoints, webhooks
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from tests.api.receiver import start_receiver

pytestmark = pytest.mark.django_db


def subscribe(url) -> WebhookEndpoint:
    return webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=url, events=[EventType.TRANSACTION_RECORDED])
    )


@pytest.fixture
def three_waiting(receiver, make_member, buy):
    """An endpoint with three purchases to hear of, of three members."""
    endpoint = subscribe(receiver.url)
    for _ in range(3):
        buy(make_member(), 10)
    return endpoint


def after_the_first_post(monkeypatch, change):
    real, posts = webhooks.post_within, []

    def post(*args, **kwargs):
        answer = real(*args, **kwargs)
        posts.append(1)
        if len(posts) == 1:
            change()
        return answer

    monkeypatch.setattr(webhooks, "post_within", post)


def test_an_endpoint_switched_off_during_a_round_hears_no_more_a_second_later(
    three_waiting, receiver, monkeypatch
):
    def switch_off():
        endpoint = WebhookEndpoint.objects.get(pk=three_waiting.pk)
        endpoint.is_active = False
        webhook_endpoints.save_endpoint(endpoint)
        time.sleep(webhooks.ENDPOINT_READ_SECONDS)  # the sender reads it once a second

    after_the_first_post(monkeypatch, switch_off)
    webhooks.send_due(endpoint_id=three_waiting.pk)

    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.filter(status="pending").count() == 2


def test_a_url_corrected_during_a_round_gets_the_rest(three_waiting, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "ENDPOINT_READ_SECONDS", 0)  # (a second later, at most)
    right, server = start_receiver()
    try:

        def correct():
            endpoint = WebhookEndpoint.objects.get(pk=three_waiting.pk)
            endpoint.url = right.url
            webhook_endpoints.save_endpoint(endpoint)

        after_the_first_post(monkeypatch, correct)
        webhooks.send_due(endpoint_id=three_waiting.pk)

        assert (len(receiver.received), len(right.received)) == (1, 2)
    finally:
        server.shutdown()


def test_a_secret_rotated_during_a_round_signs_the_rest(three_waiting, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "ENDPOINT_READ_SECONDS", 0)  # (a second later, at most)
    rotated = []
    after_the_first_post(
        monkeypatch, lambda: rotated.append(webhook_endpoints.rotate_secret(three_waiting))
    )
    webhooks.send_due(endpoint_id=three_waiting.pk)

    assert len(receiver.received) == 3
    for got in receiver.received[1:]:
        Webhook(rotated[0]).verify(got.body, got.headers)


def test_a_secret_rotated_twice_in_a_day_leaves_both_before_it_signing(receiver, member, buy):
    """The form sent twice, or the page with the new secret lost: the receiver still
    holds the first secret, or took the second."""
    endpoint = subscribe(receiver.url)
    first = endpoint.secret
    second = webhook_endpoints.rotate_secret(endpoint)
    third = webhook_endpoints.rotate_secret(endpoint)

    buy(member, 10)
    webhooks.send_due(endpoint_id=endpoint.pk)

    (got,) = receiver.received
    for secret in (first, second, third):
        Webhook(secret).verify(got.body, got.headers)


def test_a_delivery_resent_during_its_first_attempt_stays_queued(
    receiver, member, buy, monkeypatch
):
    """rules.md, Resending: one sent again while an attempt is on the wire stays queued,
    whatever that attempt's answer (its first attempt too)."""
    endpoint = subscribe(receiver.url)
    buy(member, 10)
    real = webhooks.post_within

    def post(*args, **kwargs):
        answer = real(*args, **kwargs)
        if len(receiver.received) == 1:  # a superuser clicks Resend during the first attempt
            webhooks.resend(WebhookDelivery.objects.all())
        return answer

    monkeypatch.setattr(webhooks, "post_within", post)
    webhooks.send_due(endpoint_id=endpoint.pk)

    # The first attempt's 2xx did not mark it delivered over the resend: it went again.
    assert len(receiver.received) == 2
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED


@pytest.fixture
def brand_receiver(tmp_path):
    """A CRM on the brand's network, over https with a certificate of the brand's CA."""
    receiver, server = start_receiver(tls_in=tmp_path)
    yield receiver, tmp_path / "certificate.pem"
    server.shutdown()


def test_a_receiver_certified_by_the_brand_s_own_ca_hears_the_events(
    brand_receiver, member, buy, settings
):
    receiver, certificate = brand_receiver
    settings.WEBHOOK_CA_BUNDLE = str(certificate)
    endpoint = subscribe(receiver.url)
    buy(member, 10)

    webhooks.send_due(endpoint_id=endpoint.pk)

    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED
    assert len(receiver.received) == 1


def test_a_certificate_not_trusted_is_named_as_such(brand_receiver, member, buy, settings):
    receiver, _ = brand_receiver
    settings.WEBHOOK_CA_BUNDLE = ""
    endpoint = subscribe(receiver.url)
    buy(member, 10)

    webhooks.send_due(endpoint_id=endpoint.pk)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.last_error == (
        "Certificate not trusted: self-signed certificate (WEBHOOK_CA_BUNDLE)"
    )


def test_a_certificate_for_another_host_is_named_without_blaming_the_ca_bundle(
    brand_receiver, member, buy, settings
):
    receiver, certificate = brand_receiver
    settings.WEBHOOK_CA_BUNDLE = str(certificate)  # trusted, but for 127.0.0.1 only
    endpoint = subscribe(receiver.url.replace("127.0.0.1", "localhost"))
    buy(member, 10)

    webhooks.send_due(endpoint_id=endpoint.pk)

    error = WebhookDelivery.objects.get().last_error
    assert error.startswith("Certificate not trusted: Hostname mismatch"), error
    assert "WEBHOOK_CA_BUNDLE" not in error
