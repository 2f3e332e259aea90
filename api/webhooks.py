"""Webhooks out (Webhooks, contract): the events core.events wrote, sent to each
endpoint with Standard Webhooks signatures, at least once, in order per member, retried
with backoff for about a day, then marked failed.

One sender at a time per endpoint holds it (`sending_until`), takes the oldest due
deliveries whose member has no older one still pending, and posts them one by one. An
endpoint that does not answer stops its sender at the first timeout, so it holds one
worker for at most one timeout per retry; other endpoints have their own senders."""

import base64
import json
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks import Webhook

from api.webhook_bodies import bodies
from core import events
from core.models import WebhookDelivery, WebhookEndpoint

Status = WebhookDelivery.Status

# After the nth failed attempt, the next is this much later; after the last, the
# delivery is failed. About 24 hours in all.
RETRY_DELAYS = [
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
]
BATCH = 100  # deliveries taken at once by a sender
SENDING_SECONDS = 30  # a sender gives the endpoint back after this, and is queued again


# Endpoints: registered by superusers in the CX Manager.


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_url(url: str, *, own_hosts=()) -> None:
    """Refuse a URL that is not http(s), or that points at this application (`own_hosts`:
    the host:port it is reached at, and ALLOWED_HOSTS), which would call itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Give an http:// or https:// address."})
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for own in own_hosts:
        host, _, own_port = own.rpartition(":") if ":" in own else (own, "", "")
        if host.lower() == parts.hostname.lower() and (not own_port or int(own_port) == port):
            raise ValidationError(
                {"url": f"{parts.hostname} is this application: it cannot send events to itself."}
            )


def save_endpoint(endpoint: WebhookEndpoint, *, own_hosts=()) -> WebhookEndpoint:
    """Save an endpoint (a new one gets its secret); the change applies to events from
    now on."""
    check_url(endpoint.url, own_hosts=own_hosts)
    unknown = set(endpoint.events) - set(events.EventType.values)
    if unknown or not endpoint.events:
        raise ValidationError({"events": "Choose one or more of the events listed."})
    if not endpoint.secret:
        endpoint.secret = new_secret()
    endpoint.full_clean()
    endpoint.save()
    transaction.on_commit(events.subscriptions_changed)
    events.subscriptions_changed()
    return endpoint


def resend(deliveries) -> int:
    """Send deliveries again from the first attempt (a fresh day of retries), whatever
    their status. Returns how many."""
    return deliveries.update(
        status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), delivered_at=None
    )


# Sending.


def endpoints_due(now=None):
    """The active endpoints with a delivery due and no sender holding them."""
    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(
        endpoint=OuterRef("pk"), status=Status.PENDING, next_attempt_at__lte=now
    )
    free = Q(sending_until=None) | Q(sending_until__lt=now)
    return WebhookEndpoint.objects.filter(free, Exists(due), is_active=True)


def send_due(*, endpoint_id: int, now=None, seconds: float = SENDING_SECONDS) -> bool:
    """Hold the endpoint and send its due deliveries for up to `seconds`. Returns True
    when some are left to send (the caller queues another round), False when none are
    or another sender holds it."""
    now = now or timezone.now()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    held = WebhookEndpoint.objects.filter(
        Q(sending_until=None) | Q(sending_until__lt=now), pk=endpoint_id, is_active=True
    ).update(sending_until=now + timedelta(seconds=seconds + 2 * timeout + 30))
    if not held:
        return False
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            batch = _due(endpoint, now)
            if not batch:
                return False
            if not _send(endpoint, batch, deadline):
                return False  # it did not answer: wait for the retry
            now = timezone.now()
        return True
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(sending_until=None)


def _due(endpoint, now) -> list[WebhookDelivery]:
    """The oldest due deliveries whose member has no older one pending (order per member)."""
    older = WebhookDelivery.objects.filter(
        endpoint=endpoint,
        member_id=OuterRef("member_id"),
        status=Status.PENDING,
        pk__lt=OuterRef("pk"),
    )
    return list(
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status=Status.PENDING, next_attempt_at__lte=now
        )
        .exclude(Exists(older))
        .order_by("next_attempt_at", "pk")[:BATCH]
    )


_session = requests.Session()


def _send(endpoint, batch, deadline) -> bool:
    """Post each delivery of the batch and record what happened. Stops at the first
    that gets no answer (the rest wait for its retry) and returns False; True otherwise."""
    signer = Webhook(endpoint.secret)
    payloads = bodies(batch)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    done, answered = [], True
    for delivery in batch:
        if time.monotonic() >= deadline:
            break
        sent_at = timezone.now()
        body = payloads[delivery.pk]
        message_id = f"msg_{delivery.pk}"
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(message_id, sent_at, body),
        }
        try:
            response = _session.post(
                endpoint.url,
                data=body.encode(),
                headers=headers,
                timeout=timeout,
                allow_redirects=False,  # never to another host
            )
            code, error = response.status_code, ""
            if not 200 <= code < 300:
                error = f"HTTP {code} {response.reason}"[:200]
        except requests.RequestException as exc:
            code, error, answered = None, _described(exc), False
        _attempted(delivery, at=sent_at, code=code, error=error)
        done.append(delivery)
        if not answered:
            break
    WebhookDelivery.objects.bulk_update(
        done,
        [
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
        ],
    )
    return answered


def _attempted(delivery: WebhookDelivery, *, at, code, error) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code = at, code
    delivery.last_error = error
    if not error:
        delivery.status, delivery.delivered_at = Status.DELIVERED, at
    elif delivery.attempts > len(RETRY_DELAYS):
        delivery.status = Status.FAILED
    else:
        delivery.next_attempt_at = at + RETRY_DELAYS[delivery.attempts - 1]


def _described(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "No answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "Could not connect"
    return type(exc).__name__


def payload(delivery: WebhookDelivery) -> dict:
    """The body a delivery sends, as data (for the admin)."""
    return json.loads(bodies([delivery])[delivery.pk])
