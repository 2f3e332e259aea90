"""Webhooks are never sent where the programme's own machines keep what no one outside
should reach (server-side request forgery, found by a security audit): this machine's
other services and the cloud's metadata at 169.254.169.254 (WEBHOOK_REFUSED_NETWORKS).
A superuser typing such a URL is told; a name that points there later sends nothing."""

from ipaddress import ip_network

import pytest
from django.urls import reverse

from api import webhook_endpoints, webhooks
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from loyalty_site import settings as production
from tests.api.receiver import start_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_networks(settings):
    settings.WEBHOOK_REFUSED_NETWORKS = production.WEBHOOK_REFUSED_NETWORKS


@pytest.mark.parametrize(
    "url, said",
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is in 169.254.0.0/16"),
        ("http://127.0.0.1:6379/", "127.0.0.1 is in 127.0.0.0/8"),
        ("http://localhost:9099/hooks", "localhost (127.0.0.1) is in 127.0.0.0/8"),
        ("http://[::1]:9099/hooks", "::1 is in ::1/128"),
        ("http://[::ffff:127.0.0.1]:9099/hooks", "::ffff:127.0.0.1 (127.0.0.1) is in 127.0.0.0/8"),
        ("http://0.0.0.0:9099/hooks", "0.0.0.0 is in 0.0.0.0/8"),
        ("http://[fe80::1]/hooks", "fe80::1 is in fe80::/10"),
    ],
)
def test_a_receiver_in_a_refused_network_is_refused_beside_its_url(
    admin_client, production_networks, url, said
):
    # when: a superuser registers it
    page = admin_client.post(
        reverse("admin:api_webhookendpoint_add"),
        {"url": url, "events": ["member.enrolled"], "is_active": "on"},
    )

    # then: refused, saying where it points and why
    errors = page.context["adminform"].form.errors["url"]
    assert any(said in error and "where webhooks are not sent" in error for error in errors)
    assert not WebhookEndpoint.objects.exists()


def test_a_brand_s_private_network_is_accepted_unless_the_setting_adds_it(settings):
    settings.WEBHOOK_REFUSED_NETWORKS = production.WEBHOOK_REFUSED_NETWORKS
    webhook_endpoints.check_url("http://10.20.0.5/hooks")  # the brand's CRM on its own network
    settings.WEBHOOK_REFUSED_NETWORKS = [*production.WEBHOOK_REFUSED_NETWORKS]
    settings.WEBHOOK_REFUSED_NETWORKS.append(ip_network("10.0.0.0/8"))
    with pytest.raises(Exception, match="10.20.0.5 is in 10.0.0.0/8"):
        webhook_endpoints.check_url("http://10.20.0.5/hooks")


def test_a_post_that_reaches_a_refused_network_sends_nothing(settings, member, buy):
    # given: a receiver saved while its name pointed elsewhere, now on this machine
    receiver, server = start_receiver()
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url=receiver.url, events=[EventType.TRANSACTION_RECORDED])
    )
    settings.WEBHOOK_REFUSED_NETWORKS = production.WEBHOOK_REFUSED_NETWORKS
    try:
        # when: an event is sent
        buy(member, 10)
        webhooks.send_due(endpoint_id=endpoint.pk)
    finally:
        server.shutdown()

    # then: nothing reached it, and the delivery says why (retried as a network error)
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status != WebhookDelivery.Status.DELIVERED
    assert "127.0.0.1 is in 127.0.0.0/8, where webhooks are not sent" in delivery.last_error
