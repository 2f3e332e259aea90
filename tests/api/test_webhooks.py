"""Webhooks (contract) as a receiver sees them: a real HTTP server on 127.0.0.1 that
checks every signature with the standardwebhooks package."""

import json
import time as clock
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from api import webhook_endpoints, webhooks
from api.bounded_post import post_within
from core.events import EventType
from core.models import WebhookDelivery, WebhookEndpoint
from members.services import merge_members
from points.expiry_selectors import next_cutoff
from points.models import ExpiryPolicy
from points.services import send_expiry_reminders
from rewards.services import cancel_redemption, redeem
from tests.api.receiver import serving, start_receiver
from tests.conftest import at, postgres_only, run_together
from tiers.models import Tier
from tiers.services import recalculate_all_tiers

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status


def subscribe(receiver, *types) -> WebhookEndpoint:
    return webhook_endpoints.save_endpoint(WebhookEndpoint(url=receiver.url, events=list(types)))


def verified(receiver, endpoint) -> list[dict]:
    """Every body the receiver got, each checked against its signature."""
    signer = Webhook(endpoint.secret)
    return [signer.verify(r.body, r.headers) for r in receiver.received]


def send(endpoint, now=None) -> None:
    webhooks.send_due(endpoint_id=endpoint.pk, now=now)


def test_a_purchase_that_crosses_gold_sends_one_tier_changed_event(receiver, member, buy):
    # given a Silver member (2,000 lifetime points) and an endpoint for tier changes
    buy(member, 2000)
    endpoint = subscribe(receiver, EventType.MEMBER_TIER_CHANGED)
    # when a purchase takes them over 3,000 (1,000 at Silver's x1.5)
    buy(member, 1000)
    send(endpoint)
    # then the receiver gets exactly one signed member.tier_changed, Silver to Gold
    (event,) = verified(receiver, endpoint)
    assert event["type"] == "member.tier_changed"
    assert event["data"]["member"] == member.external_id
    assert event["data"]["from_tier"] == {"code": "silver", "name": "Silver"}
    assert event["data"]["to_tier"] == {"code": "gold", "name": "Gold"}
    assert event["data"]["reason"] == "upgrade"
    assert set(event) == {"type", "timestamp", "data"}
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


def test_a_rolled_back_change_sends_nothing(receiver, member, buy):
    endpoint = subscribe(receiver, *EventType.values)
    with pytest.raises(RuntimeError), transaction.atomic():
        buy(member, 5000)  # a tier change and a transaction, then the caller fails
        raise RuntimeError("the caller's transaction fails")
    send(endpoint)
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_receiver_failing_three_times_gets_the_event_four_times_then_delivered(
    receiver, member, buy
):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    receiver.answers = [500, 500, 500]
    txn = buy(member, 10)
    now = timezone.now()
    # Each retry comes after its backoff (5 s, 30 s, 2 min): not before.
    for later in [0, 1, 6, 20, 37, 100, 160]:
        send(endpoint, now=now + timedelta(seconds=later))
    bodies = verified(receiver, endpoint)
    assert len(bodies) == 4
    assert {b["data"]["external_id"] for b in bodies} == {txn.external_id}
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Status.DELIVERED,
        4,
        200,
    )


def test_a_delivery_failing_for_a_day_is_marked_failed(receiver, member, buy):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    receiver.answers = [503] * 20
    buy(member, 10)
    now = timezone.now()
    for hour in range(0, 30):
        for minute in (0, 20, 40):
            send(endpoint, now=now + timedelta(hours=hour, minutes=minute))
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED
    assert delivery.attempts == len(webhooks.RETRY_DELAYS) + 1
    assert delivery.last_error.startswith("HTTP 503")


def test_events_of_one_member_are_delivered_in_order(receiver, make_member, buy):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    first, other = make_member(), make_member()
    receiver.answers = [500]  # the first event fails once
    early = buy(first, 10, when=at("2026-03-01"))
    late = buy(first, 20, when=at("2026-03-02"))
    others = buy(other, 30)
    send(endpoint)
    # the member's later event waits for the earlier one; another member's does not
    sent = [b["data"]["external_id"] for b in verified(receiver, endpoint)]
    assert sent == [early.external_id, others.external_id]
    send(endpoint, now=timezone.now() + timedelta(seconds=10))
    sent = [b["data"]["external_id"] for b in verified(receiver, endpoint)]
    assert sent[2:] == [early.external_id, late.external_id]


def test_one_member_s_backlog_does_not_hold_up_the_other_members(
    receiver, make_member, buy, monkeypatch
):
    """Found by an audit of long histories: a batch was the oldest deliveries due, so a
    corporate card's thousands filled every batch, one of them was sent a round (its
    order kept), and the other members' events waited behind them all (2,000 events of
    one card held up the others 141 s)."""
    monkeypatch.setattr(webhooks, "BATCH", 5)
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    card = make_member()
    backlog = [buy(card, 10, when=at(f"2026-03-{day:02d}")) for day in range(1, 9)]
    others = [buy(make_member(), 10, when=at("2026-03-20")) for _ in range(3)]

    send(endpoint)

    sent = [b["data"]["external_id"] for b in verified(receiver, endpoint)]
    # the others' in the first batch, beside the card's oldest; the card's in order
    assert set(sent[:4]) == {backlog[0].external_id, *(t.external_id for t in others)}
    assert [i for i in sent if i in {t.external_id for t in backlog}] == [
        t.external_id for t in backlog
    ]


def test_a_receiver_that_does_not_answer_stops_its_sender_at_the_first_timeout(
    receiver, make_member, buy, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.hang_seconds = 2
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    for _ in range(3):
        buy(make_member(), 10)
    send(endpoint)
    assert len(receiver.received) == 1  # one attempt, then the sender lets the worker go
    tried = WebhookDelivery.objects.get(attempts=1)
    assert (tried.status, tried.last_error) == (Status.PENDING, "No answer in time")
    assert tried.next_attempt_at > timezone.now()
    assert WebhookDelivery.objects.filter(attempts=0, status=Status.PENDING).count() == 2


def test_a_redirect_is_not_followed(receiver, member, buy):
    elsewhere, server = start_receiver()
    try:
        receiver.answers, receiver.location = [307], elsewhere.url
        endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
        buy(member, 10)
        send(endpoint)
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.last_status_code) == (Status.PENDING, 307)
        assert elsewhere.received == []
    finally:
        server.shutdown()


def test_an_endpoint_gets_only_the_events_it_chose(receiver, member, buy, catalogue):
    endpoint = subscribe(receiver, EventType.REDEMPTION_CREATED)
    buy(member, 2000)
    from rewards.services import redeem

    redemption = redeem(member=member, reward=catalogue["5 euro voucher"])
    send(endpoint)
    (event,) = verified(receiver, endpoint)
    assert event["type"] == "redemption.created"
    assert event["data"]["id"] == redemption.pk
    assert event["data"]["points"] == redemption.points


def test_an_inactive_endpoint_hears_nothing(receiver, member, buy):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    endpoint.is_active = False
    webhook_endpoints.save_endpoint(endpoint)
    buy(member, 10)
    send(endpoint)
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_failed_event_resent_and_delivered_lets_the_members_next_go_at_once(
    receiver, member, buy
):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    receiver.answers = [500, 500]  # the first event fails twice: its retry in 30 s
    early = buy(member, 10, when=at("2026-03-01"))
    late = buy(member, 20, when=at("2026-03-02"))
    now = timezone.now()
    send(endpoint, now=now)
    send(endpoint, now=now + timedelta(seconds=6))

    # when: the receiver is mended, and staff resend the first event
    webhooks.resend(WebhookDelivery.objects.filter(subject_id=early.pk))
    send(endpoint, now=now + timedelta(seconds=7))

    # then: the member's later event goes with it, not 30 s later
    sent = [b["data"]["external_id"] for b in verified(receiver, endpoint)]
    assert sent == [early.external_id] * 3 + [late.external_id]


def test_resend_sends_a_delivered_event_again(receiver, member, buy):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    buy(member, 10)
    send(endpoint)
    webhooks.resend(WebhookDelivery.objects.all())
    send(endpoint)
    first, again = verified(receiver, endpoint)
    assert first["data"] == again["data"]
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hooks", "javascript:alert(1)", "example.com/hooks", "http:///hooks"],
)
def test_an_endpoint_url_must_be_http_or_https(url):
    with pytest.raises(Exception, match="http:// or https://"):
        webhook_endpoints.check_url(url)


def test_an_endpoint_may_not_point_at_the_application_itself():
    own = ["loyalty.example.com", "127.0.0.1:8000"]
    for url in ["https://loyalty.example.com/api/v1/members", "http://127.0.0.1:8000/admin/"]:
        with pytest.raises(Exception, match="cannot send events to itself"):
            webhook_endpoints.check_url(url, own_hosts=own)
    webhook_endpoints.check_url("http://127.0.0.1:9000/hooks", own_hosts=own)  # another service


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "[::]"]
)
def test_the_application_at_an_address_that_reaches_this_machine_is_still_itself(host):
    """The sender connects to each of these as to 127.0.0.1 (0.0.0.0 and :: too)."""
    with pytest.raises(Exception, match="cannot send events to itself"):
        webhook_endpoints.check_url(
            f"http://{host}:8000/api/v1/members", own_hosts=["127.0.0.1:8000"]
        )
    webhook_endpoints.check_url(
        f"http://{host}:9000/hooks", own_hosts=["127.0.0.1:8000"]
    )  # another


def test_the_application_written_another_way_is_still_itself():
    own = ["loyalty.example.com", "[::1]:8000"]
    for url in [
        "https://Loyalty.Example.com./api/v1/members",
        "http://[::1]:8000/admin/",
        "http://[0:0:0:0:0:0:0:1]:8000/admin/",
    ]:
        with pytest.raises(Exception, match="cannot send events to itself"):
            webhook_endpoints.check_url(url, own_hosts=own)
    webhook_endpoints.check_url("http://[::1]:9000/hooks", own_hosts=own)  # another service


@pytest.mark.parametrize("port", ["99999", "0"])
def test_an_endpoint_url_with_a_port_out_of_range_is_refused_in_words(port):
    with pytest.raises(Exception, match="port must be a number from 1 to 65535"):
        webhook_endpoints.check_url(f"https://crm.example.com:{port}/hooks")


def test_signatures_use_the_endpoints_own_secret(receiver, member, buy):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    other = webhook_endpoints.new_secret()
    assert other != endpoint.secret and endpoint.secret.startswith("whsec_")
    buy(member, 10)
    send(endpoint)
    (received,) = receiver.received
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(received.body, received.headers)
    assert json.loads(received.body)["type"] == "transaction.recorded"


def test_after_a_rotation_both_secrets_verify_for_a_day_then_the_new_one_alone(
    receiver, member, buy
):
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    old = endpoint.secret

    # when: rotated; a delivery; then rotated a day ago (the old one's day is over)
    new = webhook_endpoints.rotate_secret(endpoint)
    buy(member, 10)
    send(endpoint)
    webhook_endpoints.rotate_secret(endpoint, now=timezone.now() - timedelta(hours=25))
    newest = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    buy(member, 20)
    send(endpoint)

    # then: the first verifies with either secret (the receiver changes at its pace);
    # the second with the newest alone
    first, second = receiver.received
    for secret in (old, new):
        assert Webhook(secret).verify(first.body, first.headers)["type"] == "transaction.recorded"
    assert Webhook(newest).verify(second.body, second.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new).verify(second.body, second.headers)


@postgres_only
def test_the_one_statement_purchase_also_reports_its_event(receiver, member, buy):
    # PostgreSQL writes a plain purchase without the member lock; with transaction
    # events wanted, the event must still be written with it.
    endpoint = subscribe(receiver, EventType.TRANSACTION_RECORDED)
    txn = buy(member, 10)
    send(endpoint)
    (event,) = verified(receiver, endpoint)
    assert event["data"]["external_id"] == txn.external_id
    assert event["data"]["points"] == 10


def test_a_bulk_event_waiting_for_its_retry_goes_first_and_holds_up_nothing(
    receiver, make_member, buy
):
    # given a Silver member, then a threshold change that moves them down (a bulk job's
    # event, expanded with the job's time) followed by a full batch of purchases
    member = make_member()
    buy(member, 1200)
    endpoint = subscribe(receiver, EventType.MEMBER_TIER_CHANGED, EventType.TRANSACTION_RECORDED)
    Tier.objects.filter(code="silver").update(threshold=1500)
    recalculate_all_tiers()
    purchases = [buy(member, 1) for _ in range(webhooks.BATCH)]
    # and the tier change's first attempt fails
    receiver.answers = [500]
    send(endpoint)

    # when the sender runs after the retry delay
    webhooks.send_due(endpoint_id=endpoint.pk, now=timezone.now() + timedelta(seconds=10))

    # then the tier change went again first, then every purchase, in order
    heard = [event["type"] for event in verified(receiver, endpoint)]
    assert heard[:2] == ["member.tier_changed", "member.tier_changed"]
    ids = [event["data"]["external_id"] for event in verified(receiver, endpoint)[2:]]
    assert ids == [purchase.external_id for purchase in purchases]
    assert not WebhookDelivery.objects.filter(status=Status.PENDING).exists()


def test_a_merged_accounts_cancellation_never_arrives_before_its_redemption(
    receiver, make_member, buy, staff, catalogue
):
    # given a redemption of an account whose redemption.created waits for its retry
    survivor, duplicate = make_member(), make_member()
    buy(duplicate, 2000)
    endpoint = subscribe(receiver, EventType.REDEMPTION_CREATED, EventType.REDEMPTION_CANCELLED)
    redemption = redeem(member=duplicate, reward=catalogue["5 euro voucher"])
    receiver.answers = [503]
    send(endpoint)

    # when the account is merged into another, the redemption cancelled, and both sent
    merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="Two cards")
    cancel_redemption(redemption=redemption, by=staff)
    send(endpoint)
    send(endpoint, now=timezone.now() + timedelta(seconds=10))

    # then the receiver heard them in the order they happened, both naming the account
    heard = [(e["type"], e["data"]["member"]) for e in verified(receiver, endpoint)[1:]]
    code = duplicate.external_id
    assert heard == [("redemption.created", code), ("redemption.cancelled", code)]


def test_the_events_behind_a_reminder_a_merge_withdrew_go_at_once(
    receiver, make_member, buy, staff
):
    """Found by a review: they waited for the withdrawn reminder's retry (up to hours)."""
    # given: a reminder whose points.expiring waits for its retry, and the account's
    # purchase after it, waiting behind it
    survivor, duplicate = make_member(), make_member()
    buy(duplicate, 20, when=timezone.now() - timedelta(hours=1))
    endpoint = subscribe(receiver, EventType.POINTS_EXPIRING, EventType.TRANSACTION_RECORDED)
    ExpiryPolicy.objects.update(cycle="monthly", starts_on=timezone.localdate(), reminder_days=40)
    assert send_expiry_reminders() == 1
    later = buy(duplicate, 10, when=timezone.now())
    receiver.answers = [503, 503]
    now = timezone.now()
    send(endpoint, now=now)  # the reminder fails: retried in 5 s
    send(endpoint, now=now + timedelta(seconds=6))  # fails again: in 30 s
    send(endpoint, now=now + timedelta(seconds=7))  # the purchase waits behind it

    # when: the account is merged (its reminder withdrawn), and the sender runs again
    merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="Two cards")
    send(endpoint, now=now + timedelta(seconds=8))

    # then: the purchase was heard then, not 30 s later
    heard = [e["data"].get("external_id") for e in verified(receiver, endpoint)]
    assert heard[-1] == later.external_id


def test_a_reminder_dropped_by_a_merge_is_not_sent_without_its_data(
    receiver, make_member, buy, staff
):
    # given an expiry reminder whose points.expiring waits for its retry
    survivor, duplicate = make_member(), make_member()
    today = timezone.localdate()
    buy(duplicate, 20, when=timezone.now() - timedelta(hours=1))
    endpoint = subscribe(receiver, EventType.POINTS_EXPIRING)
    ExpiryPolicy.objects.update(cycle="monthly", starts_on=today)
    cutoff = next_cutoff(ExpiryPolicy.current(), today)
    remind_at = timezone.make_aware(datetime.combine(cutoff - timedelta(days=1), time(9)))
    assert send_expiry_reminders(now=remind_at) == 1
    receiver.answers = [503]
    send(endpoint)
    (first,) = verified(receiver, endpoint)

    # when the account is merged (its reminder dropped), then the sender runs again
    merge_members(survivor=survivor, duplicate=duplicate, by=staff, reason="Two cards")
    send(endpoint, now=timezone.now() + timedelta(seconds=10))

    # then the reminder was heard once, with its data, and not again: withdrawn, saying why
    assert first["data"] == {"member": duplicate.external_id, "cutoff": str(cutoff), "points": 20}
    assert len(receiver.received) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Status.FAILED
    assert delivery.last_error == (
        "Not sent: the reminder was dropped (the account was merged into another)."
    )


def test_a_receiver_that_drips_its_answer_is_cut_off_at_the_timeout(member, buy, settings):
    # given a receiver that answers 200, a byte every 0.1 s (about 4 s in all)
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5

    class Dripping(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            try:
                for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    clock.sleep(0.1)
            except OSError:  # the sender hung up: as it should
                pass

        def log_message(self, *args):
            pass

    server = serving(Dripping)
    try:
        endpoint = webhook_endpoints.save_endpoint(
            WebhookEndpoint(
                url=f"http://127.0.0.1:{server.server_address[1]}/hooks",
                events=[EventType.TRANSACTION_RECORDED],
            )
        )
        buy(member, 10)

        # when
        started = clock.monotonic()
        webhooks.send_due(endpoint_id=endpoint.pk, seconds=0.1)
        took = clock.monotonic() - started

        # then no answer within the timeout: a failed attempt, retried later, and the
        # sender let go after about one timeout
        delivery = WebhookDelivery.objects.get()
        assert took < 2 * settings.WEBHOOK_TIMEOUT_SECONDS + 0.5, f"held {took:.1f} s"
        assert (delivery.status, delivery.attempts) == (Status.PENDING, 1)
        assert delivery.last_error == "No answer in time"
    finally:
        server.shutdown()


def test_a_post_from_another_thread_than_the_main_one_goes_too(receiver):
    # (that it is cut off there at its timeout too: tests/api/test_webhook_deadline.py)
    (answer,) = run_together(1, lambda i: post_within(requests.Session(), 2, receiver.url))
    assert answer.status_code == 200 and len(receiver.received) == 1
