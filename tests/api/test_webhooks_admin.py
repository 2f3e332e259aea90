"""Webhook endpoints and deliveries in the CX Manager: superusers only; the secret shown
once; addresses that cannot work refused in words; deliveries listed and resent."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from api import webhook_endpoints
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"<code>(whsec_[\w+/=]+)</code>")
ADD = "admin:api_webhookendpoint_add"
DELIVERIES = "admin:api_webhookdelivery_changelist"


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def add_endpoint(client, url, events=("member.tier_changed",)):
    return client.post(
        reverse(ADD),
        {"url": url, "description": "CRM", "events": list(events), "is_active": "on"},
        follow=True,
    )


def test_a_port_out_of_range_is_a_form_error_not_a_500(superuser_client):
    page = add_endpoint(superuser_client, "https://crm.example.com:99999/hooks")
    assert page.status_code == 200
    assert "The port must be a number from 1 to 65535." in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_superuser_adds_an_endpoint_and_sees_its_secret_once(superuser_client):
    page = add_endpoint(superuser_client, "https://crm.example.com/hooks").content.decode()
    endpoint = WebhookEndpoint.objects.get()
    assert SECRET.search(page).group(1) == endpoint.secret
    assert endpoint.events == ["member.tier_changed"]
    again = superuser_client.get(
        reverse("admin:api_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()
    assert endpoint.secret not in again


def test_a_superuser_rotates_a_secret_and_sees_the_new_one_once(superuser_client):
    add_endpoint(superuser_client, "https://crm.example.com/hooks")
    endpoint = WebhookEndpoint.objects.get()
    old = endpoint.secret

    page = superuser_client.post(
        reverse("admin:api_webhookendpoint_changelist"),
        {"action": "rotate", ACTION_CHECKBOX_NAME: [endpoint.pk]},
        follow=True,
    ).content.decode()

    endpoint.refresh_from_db()
    assert SECRET.search(page).group(1) == endpoint.secret != old
    assert endpoint.previous_secret == old
    assert "The old one signs too until" in page
    again = superuser_client.get(reverse("admin:api_webhookendpoint_changelist")).content
    assert endpoint.secret.encode() not in again


def test_only_a_superuser_rotates_a_secret(client, django_user_model):
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(url="https://crm.example.com/hooks", events=["member.tier_changed"])
    )
    staff = django_user_model.objects.create_user("agent", is_staff=True)
    client.force_login(staff)

    response = client.post(
        reverse("admin:api_webhookendpoint_changelist"),
        {"action": "rotate", ACTION_CHECKBOX_NAME: [endpoint.pk]},
    )

    assert response.status_code == 403
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://crm.example.com/hooks", "Give an http:// or https:// address."),
        ("https://loyalty.example.com/api/v1/members", "loyalty.example.com is this application"),
    ],
)
def test_an_address_that_cannot_work_is_refused_in_words(superuser_client, settings, url, message):
    settings.ALLOWED_HOSTS = ["loyalty.example.com", "testserver"]
    page = add_endpoint(superuser_client, url).content.decode()
    assert message in page
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_must_choose_its_events(superuser_client):
    page = add_endpoint(superuser_client, "https://crm.example.com/hooks", events=[])
    assert "This field is required" in page.content.decode()
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("role", ["CX agent", "Marketer", "Operations"])
def test_only_superusers_see_webhooks(login, client, role):
    login(role)
    for name in [ADD, DELIVERIES, "admin:api_webhookendpoint_changelist"]:
        assert client.get(reverse(name)).status_code == 403


def test_the_deliveries_list_names_members_and_runs_a_bounded_number_of_queries(
    superuser_client, make_member, buy, django_assert_max_num_queries
):
    webhook_endpoints.save_endpoint(
        WebhookEndpoint(
            url="https://crm.example.com/hooks", events=[EventType.TRANSACTION_RECORDED]
        )
    )
    members = [make_member() for _ in range(30)]
    for member in members:
        buy(member, 10)
    with django_assert_max_num_queries(8):
        page = superuser_client.get(reverse(DELIVERIES)).content.decode()
    assert all(m.external_id in page for m in members)
    found = superuser_client.get(reverse(DELIVERIES), {"q": members[3].external_id})
    assert found.context["cl"].result_list[0].member_id == members[3].pk
    assert len(found.context["cl"].result_list) == 1


def test_a_delivery_page_shows_its_body_and_resend_queues_it_again(superuser_client, member, buy):
    endpoint = webhook_endpoints.save_endpoint(
        WebhookEndpoint(
            url="https://crm.example.com/hooks", events=[EventType.TRANSACTION_RECORDED]
        )
    )
    txn = buy(member, 10)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=11)
    page = superuser_client.get(
        reverse("admin:api_webhookdelivery_change", args=[delivery.pk])
    ).content.decode()
    assert txn.external_id in page and "transaction.recorded" in page
    done = superuser_client.post(
        reverse(DELIVERIES),
        {"action": "resend", ACTION_CHECKBOX_NAME: [delivery.pk]},
        follow=True,
    ).content.decode()
    assert "1 deliveries queued again" in done
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert endpoint.deliveries.count() == 1


def test_a_delivery_page_shows_names_as_written(superuser_client, tiers):
    """Found by an audit: "José" read "Jos\\u00e9" on the page, as the wire escapes it."""
    from members.services import enroll_member

    webhook_endpoints.save_endpoint(
        WebhookEndpoint(url="https://crm.example.com/hooks", events=[EventType.MEMBER_ENROLLED])
    )
    enroll_member(external_id="M-JOSE", email="jose@example.es", first_name="José")
    delivery = WebhookDelivery.objects.get()
    page = superuser_client.get(reverse("admin:api_webhookdelivery_change", args=[delivery.pk]))
    assert "&quot;first_name&quot;: &quot;José&quot;" in page.content.decode()


def test_an_event_ticked_twice_is_heard_once(superuser_client, member, buy):
    """Found by a review: the form took the same event twice, and every purchase after
    failed (two deliveries of one event)."""
    add_endpoint(
        superuser_client,
        "https://crm.example.com/hooks",
        events=[EventType.TRANSACTION_RECORDED, EventType.TRANSACTION_RECORDED],
    )
    assert WebhookEndpoint.objects.get().events == [EventType.TRANSACTION_RECORDED]

    buy(member, 10)

    assert WebhookDelivery.objects.count() == 1


def test_the_deliveries_filter_offers_every_event_type_and_filters_by_it(
    superuser_client, member, buy
):
    """The filter names the types from the list of events (found by a review: read from
    every delivery ever written, on each load of the page)."""
    webhook_endpoints.save_endpoint(
        WebhookEndpoint(
            url="https://crm.example.com/hooks",
            events=[EventType.TRANSACTION_RECORDED, EventType.MEMBER_TIER_CHANGED],
        )
    )
    buy(member, 10)
    page = superuser_client.get(reverse(DELIVERIES))
    (types,) = [spec for spec in page.context["cl"].filter_specs if spec.title == "type"]
    assert set(EventType.values) <= {c["display"] for c in types.choices(page.context["cl"])}
    tier_changes = superuser_client.get(
        reverse(DELIVERIES), {"type": EventType.MEMBER_TIER_CHANGED}
    )
    assert len(tier_changes.context["cl"].result_list) == 0
    purchases = superuser_client.get(reverse(DELIVERIES), {"type": EventType.TRANSACTION_RECORDED})
    assert len(purchases.context["cl"].result_list) == 1
