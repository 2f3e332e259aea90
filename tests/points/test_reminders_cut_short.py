"""An expiry reminder run cut short (its database connection lost, its worker killed)
between queueing the messages and reporting them to the brand's systems: nothing of it
stays, and the next run queues the reminders and their points.expiring events together."""

from datetime import date

import pytest
from django.db import OperationalError

from core import events
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Notification
from points.models import ExpiryPolicy
from points.services import expiry, send_expiry_reminders
from tests.conftest import at

pytestmark = pytest.mark.django_db


def test_a_reminder_run_cut_short_leaves_nothing_and_the_next_reports_every_reminder(
    make_member, buy, monkeypatch
):
    # given a member with points at stake, and a CRM that hears points.expiring
    endpoint = WebhookEndpoint.objects.create(
        url="https://crm.example.com/hooks", events=[EventType.POINTS_EXPIRING], secret="whsec_x"
    )
    events.subscriptions_changed()
    member = make_member()
    buy(member, 20, when=at("2026-03-01"))
    ExpiryPolicy.objects.update(cycle="quarterly", starts_on=date(2026, 1, 1))

    # when the run loses its database connection once the reminders are queued
    def lost(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    with monkeypatch.context() as patched:
        patched.setattr(expiry.events, "record_bulk", lost)
        with pytest.raises(OperationalError):
            send_expiry_reminders(now=at("2026-03-17"))

    # then no reminder is left queued without its event
    assert not Notification.objects.filter(kind=Notification.Kind.EXPIRY_REMINDER).exists()

    # and the next run (the task's retry, or the next day's) queues both
    assert send_expiry_reminders(now=at("2026-03-18")) == 1
    events.expand_bulk_events()
    (reminder,) = Notification.objects.filter(kind=Notification.Kind.EXPIRY_REMINDER)
    (delivery,) = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert (delivery.type, delivery.subject_id) == (EventType.POINTS_EXPIRING, reminder.pk)
