"""Webhook endpoints, registered by superusers in the CX Manager (Webhooks, contract):
a Standard Webhooks secret, shown once and rotated with a day's overlap; a URL checked
before it is saved (http or https, never this application, never a refused network);
the events it hears of from the next one on. Sending is api.webhooks'."""

import base64
import ipaddress
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from api.refused_networks import refusal, refused_network, written_address
from core import events
from core.models import WebhookEndpoint


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# After a rotation, the old secret signs too for this long (a second signature in the
# header, as Standard Webhooks allows): the receiver has a day to take the new one.
OLD_SECRET_SIGNS = timedelta(hours=24)
# Rotated again within that day (a form sent twice, a page lost before the new secret
# was read), the secret before signs on as well: the receiver may hold either. The
# old ones are kept space-separated in previous_secret, newest first, as many as fit.
OLD_SECRETS_KEPT = 2


def rotate_secret(endpoint: WebhookEndpoint, *, now=None) -> str:
    """A new signing secret for the endpoint (shown once, as at its creation); the old
    ones sign beside it for OLD_SECRET_SIGNS. Returns the new secret."""
    now = now or timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        old = [endpoint.secret, *old_secrets(endpoint, at=now)][:OLD_SECRETS_KEPT]
        endpoint.previous_secret, endpoint.secret = " ".join(old), new_secret()
        endpoint.previous_secret_until = now + OLD_SECRET_SIGNS
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return endpoint.secret


def old_secrets(endpoint: WebhookEndpoint, *, at) -> list[str]:
    """The secrets rotated out that still sign at `at`."""
    if endpoint.previous_secret and endpoint.previous_secret_until > at:
        return endpoint.previous_secret.split()
    return []


def check_url(url: str, *, own_hosts=()) -> None:
    """Refuse a URL that is not http(s), or that points at this application (`own_hosts`:
    the host:port it is reached at, and ALLOWED_HOSTS), which would call itself. Host
    names compare as DNS does: in any case, with or without the final dot. The URL is
    read as the sender will post to it (requests prepares it: a backslash ends the host
    there, where urlsplit reads on), and one it cannot post to is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Give an http:// or https:// address."})
    try:
        port = parts.port
    except ValueError:  # urlsplit's "Port out of range 0-65535", or not a number
        port = 0
    if port == 0:
        raise ValidationError({"url": "The port must be a number from 1 to 65535."})
    try:
        parts = urlsplit(requests.Request("POST", url).prepare().url)
    except requests.RequestException as wrong:
        raise ValidationError({"url": f"This address cannot be sent to: {wrong}"}) from None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = written_address(parts.hostname)
    if address and (network := refused_network(address)):
        raise ValidationError({"url": refusal(parts.hostname, address, network)})
    for own in own_hosts:
        own = urlsplit(f"//{own}")  # "[::1]:8000", "host", "host:443"
        try:
            own_port = own.port
        except ValueError:
            continue  # not an address this application can be reached at
        if _host(own.hostname) == _host(parts.hostname) and own_port in (None, port):
            raise ValidationError(
                {"url": f"{parts.hostname} is this application: it cannot send events to itself."}
            )


def _host(name: str | None) -> str:
    """A host name as DNS compares it; an IP address in its one written form (an IPv4
    address written as IPv6, ::ffff:127.0.0.1, as IPv4; or as the sender's resolver also
    reads one: 127.1, 2130706433, 0x7f000001, 0177.0.0.1); this machine as one name,
    whichever way it is written (localhost, 127.0.0.0/8, ::1, and 0.0.0.0 or ::, which
    a connection reaches this machine through)."""
    name = (name or "").lower().rstrip(".")
    if (written := written_address(name)) is None:
        return name
    address = ipaddress.ip_address(written)
    return LOOPBACK if address.is_loopback or address.is_unspecified else address.compressed


LOOPBACK = "this machine"


STAFF_FIELDS = ["url", "description", "events", "is_active", "switched_off_reason"]


def save_endpoint(endpoint: WebhookEndpoint, *, own_hosts=()) -> WebhookEndpoint:
    """Save an endpoint (a new one gets its secret); the change applies to events from
    now on."""
    check_url(endpoint.url, own_hosts=own_hosts)
    # Each event once, however the form sent it: twice would be two deliveries of one event.
    endpoint.events = list(dict.fromkeys(endpoint.events))
    unknown = set(endpoint.events) - set(events.EventType.values)
    if unknown or not endpoint.events:
        raise ValidationError({"events": "Choose one or more of the events listed."})
    if not endpoint.secret:
        endpoint.secret = new_secret()
    if endpoint.is_active:
        endpoint.switched_off_reason = ""
    endpoint.full_clean()
    if endpoint._state.adding:
        endpoint.save()
    else:  # what staff change: the page's copy of the rest (a sender's hold, a secret
        # rotated meanwhile) would undo what happened since it was opened
        endpoint.save(update_fields=STAFF_FIELDS)
    transaction.on_commit(events.subscriptions_changed)
    events.subscriptions_changed()
    return endpoint
