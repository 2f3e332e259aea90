"""Webhooks out (Webhooks, contract): the events core.events wrote, sent to each
endpoint with Standard Webhooks signatures, at least once, in order per member, retried
with backoff for about a day, then marked failed.

One sender at a time per endpoint holds it (`sending_until`), takes the oldest due
deliveries whose member has no older one still pending, and posts them one by one. An
endpoint that does not answer stops its sender at the first timeout, so it holds one
worker for at most one timeout per retry; other endpoints have their own senders."""

import json
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from secrets import randbelow

import requests
from django.conf import settings
from django.db.models import Exists, F, Min, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from standardwebhooks import Webhook

from api.bounded_post import post_within, watched
from api.refused_networks import RefusedNetwork
from api.webhook_bodies import SCRUBBED, bodies, carries_its_data, subjects_gone
from api.webhook_endpoints import old_secrets
from core import events
from core.models import WebhookDelivery, WebhookEndpoint
from members.models import Member

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
# Answers that ask the sender to slow down (Standard Webhooks, "Delivery success and
# failure"): the round stops there, the other deliveries waiting for the next, and with
# a Retry-After the whole endpoint waits as asked. A Retry-After with any failure puts
# that delivery's retry back as asked. Either wait is a day at most.
SLOW_DOWN = {429, 502, 503, 504}
LONGEST_ASKED_WAIT = timedelta(days=1)
# "No longer interested": the endpoint is switched off, its waiting events kept for
# when a superuser switches it on again.
GONE = 410
BATCH = 100  # deliveries taken at once by a sender
# How stale the endpoint a sender posts as may be: read before every post, it cost a
# third of the sender's rate (771 against 485 deliveries a second, bench/webhooks.py).
ENDPOINT_READ_SECONDS = 1.0
SENDING_SECONDS = 30  # a sender gives the endpoint back after this, and is queued again


# Signatures (the endpoints and their secrets: api.webhook_endpoints).


def _signature(endpoint: WebhookEndpoint, message_id: str, sent_at, body: str) -> str:
    """webhook-signature: by the secret, and by those before it while they still sign."""
    signing = [endpoint.secret, *old_secrets(endpoint, at=sent_at)]
    return " ".join(Webhook(secret).sign(message_id, sent_at, body) for secret in signing)


@dataclass
class Resent:
    queued: int  # of which `waiting` for an endpoint switched off, sent once it is on
    waiting: int
    withdrawn: int  # not queued: what they report is gone, or their member erased


def resend(deliveries) -> Resent:
    """Send deliveries (a queryset) again from the first attempt (a fresh day of
    retries), whatever their status, except those whose subject is gone (a withdrawn
    expiry reminder: never sent without its data) and those of erased members (never
    sent at all: _withhold_erased), but for their member.erased still waiting with the
    code (once done, its code is gone: scrubbed). Their endpoints' pauses (a receiver's
    Retry-After) are lifted."""
    reminders = deliveries.filter(type=events.EventType.POINTS_EXPIRING)
    gone = subjects_gone(reminders.select_related(None).only("pk", "type", "subject_id"))
    erased = Member.objects.filter(pk__in=deliveries.values("member_id"), erased_at__isnull=False)
    withdrawn = deliveries.filter(
        Q(pk__in=gone) | (Q(member_id__in=erased.values("pk")) & ~TELLS_ERASURE)
    )
    withdrawn_ids = list(withdrawn.values_list("pk", flat=True))
    deliveries = deliveries.exclude(pk__in=withdrawn_ids)
    waiting = deliveries.filter(endpoint__is_active=False).count()
    now = timezone.now()
    # The superuser who resends says the receiver is ready: the wait it asked for ends.
    WebhookEndpoint.objects.filter(
        pk__in=deliveries.values("endpoint_id"), paused_until__gt=now
    ).update(paused_until=None)
    queued = deliveries.update(
        status=Status.PENDING, attempts=0, next_attempt_at=now, delivered_at=None
    )
    return Resent(queued, waiting, len(withdrawn_ids))


# Sending.


def endpoints_due(now=None):
    """The active endpoints with a delivery due and no sender holding them (after
    writing the deliveries of the bulk jobs' events)."""
    now = now or timezone.now()
    events.expand_bulk_events()
    due = WebhookDelivery.objects.filter(
        endpoint=OuterRef("pk"), status=Status.PENDING, next_attempt_at__lte=now
    )
    return WebhookEndpoint.objects.filter(_free(now), Exists(due), is_active=True)


def _free(now) -> Q:
    """Endpoints no sender holds (a sender that died lets go when its hold ends) and
    whose receiver asked for no wait beyond now."""
    held = Q(sending_until=None) | Q(sending_until__lt=now)
    return held & (Q(paused_until=None) | Q(paused_until__lte=now))


def send_due(*, endpoint_id: int, now=None, seconds: float = SENDING_SECONDS) -> bool:
    """Hold the endpoint and send its due deliveries for up to `seconds`. Returns True
    when some are left to send (the caller queues another round), False when none are
    or another sender holds it."""
    now = now or timezone.now()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    # This sender's hold, by its end: released only while it is still this one's
    hold = now + timedelta(seconds=seconds + 2 * timeout + 30, microseconds=randbelow(10**6))
    mine = WebhookEndpoint.objects.filter(pk=endpoint_id, sending_until=hold)
    held = WebhookEndpoint.objects.filter(_free(now), pk=endpoint_id, is_active=True).update(
        sending_until=hold
    )
    if not held:
        return False
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    deadline = time.monotonic() + seconds
    answered_last = False  # whether the round's last post was answered (_send)
    try:
        while time.monotonic() < deadline:
            if not mine.exists():  # a post outlasted the hold: another sender has it now
                return False
            events.expand_bulk_events()  # a bulk job's events keep their place in line
            if events.bulk_events_in_progress():
                return False  # another worker writes some: they go first (beat's next round)
            due, batch = _due(endpoint, now)
            if not due:
                return False
            if batch:
                go_on, answered_last = _send(mine, batch, deadline, answered_last)
                if not go_on:
                    return False  # no answer, or asked to wait: the next round's
            now = max(now, timezone.now())
        return True
    finally:
        mine.update(sending_until=None)


def _due(endpoint, now) -> tuple[bool, list[WebhookDelivery]]:
    """Whether any delivery is due, and the batch to send: the BATCH members whose
    deliveries fell due first, each with their oldest still pending (order per member),
    when it is due (a bulk job's event is expanded with the job's time, but a later id
    than the member's events recorded meanwhile). Taken by member, not by delivery: one
    member's backlog (a corporate card's thousands of events) would otherwise fill every
    batch, and the others' events wait behind it one a round. A member's later delivery
    whose oldest waits for its retry waits with it (its next attempt moves to the
    oldest's), so that it does not come back in every batch."""
    pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=Status.PENDING)
    members = list(
        pending.filter(next_attempt_at__lte=now)
        .values("member_id")
        .annotate(first_due=Min("next_attempt_at"))
        .order_by("first_due", "member_id")
        .values_list("member_id", flat=True)[:BATCH]
    )
    in_line = Window(RowNumber(), partition_by="member_id", order_by=["created_at", "pk"])
    heads = list(pending.filter(member_id__in=members).annotate(place=in_line).filter(place=1))
    waiting = {head.member_id: head for head in heads if head.next_attempt_at > now}
    for member_id, head in waiting.items():
        later = pending.filter(member_id=member_id, next_attempt_at__lte=now).exclude(pk=head.pk)
        later.update(next_attempt_at=head.next_attempt_at)
    batch = [head for head in heads if head.member_id not in waiting]
    return bool(members), sorted(batch, key=lambda d: (d.created_at, d.pk))


# Its connections watched, so that a post ends at its timeout (api.bounded_post).
_session = watched(requests.Session())
# The environment's proxy settings are read once per batch (_send), not on every post.
_session.trust_env = False


# An erased member's events are never sent (rules.md, Erasing a member): their ids (a
# receipt, a voucher, a redemption) would tie the erased account to the customer. But
# for the erasure itself (member.erased), while it keeps the code to forget.
ERASED = "Not sent: the member was erased."
TELLS_ERASURE = Q(type=events.EventType.MEMBER_ERASED) & ~SCRUBBED


def _tells_erasure(delivery: WebhookDelivery) -> bool:
    """TELLS_ERASURE, for one delivery."""
    return delivery.type == events.EventType.MEMBER_ERASED and carries_its_data(delivery)


def _withhold_erased(batch: list[WebhookDelivery]) -> list[WebhookDelivery]:
    """The batch without the deliveries of erased members, which are marked failed,
    saying why: those waiting when the member was erased, those of the changes made
    since (a nightly job, a cancellation), and those resent."""
    members = {delivery.member_id for delivery in batch}
    erased = set(
        Member.objects.filter(pk__in=members, erased_at__isnull=False).values_list("pk", flat=True)
    )
    withheld = {d.pk for d in batch if d.member_id in erased and not _tells_erasure(d)}
    return _withhold(batch, withheld, why=ERASED)


def _withhold(batch: list[WebhookDelivery], withheld: set[int], *, why: str) -> list:
    """The batch without the deliveries `withheld` (ids), which are marked failed,
    saying why."""
    if withheld:
        WebhookDelivery.objects.filter(pk__in=withheld, status=Status.PENDING).update(
            status=Status.FAILED, last_error=why
        )
    return [delivery for delivery in batch if delivery.pk not in withheld]


GONE_SUBJECT = "Not sent: what it reported is gone (a reminder dropped by a merge or an erasure)."


def _withhold_gone(batch: list[WebhookDelivery], payloads: dict) -> list[WebhookDelivery]:
    """The batch without the deliveries whose subject is gone (no body): an expiry
    reminder a merge dropped while its event was being written, which the withdrawal
    (core.events.withdraw) did not see yet. Marked failed, saying why, as it marks them."""
    gone = {delivery.pk for delivery in batch if delivery.pk not in payloads}
    return _withhold(batch, gone, why=GONE_SUBJECT)


def _send(held, batch, deadline, answered_last: bool) -> tuple[bool, bool]:
    """Post each delivery of the batch and record what happened. Returns whether the
    round goes on, and whether its last post was answered (`answered_last`: the one
    before the batch's first). Stops at a post that gets no answer when the one before
    got none either (or it is the round's first: the receiver is down, and the rest
    wait for its retry), at an answer asking to slow down (with a Retry-After, the
    endpoint waits as asked), or at 410 Gone (the endpoint is switched off). One slow
    answer among others holds up only its own member's events. `held`: the endpoint
    while this sender holds it, read again before a post every ENDPOINT_READ_SECONDS,
    so that a post goes as a superuser left it a moment ago (switched off, its URL
    corrected, its secret rotated)."""
    batch = _withhold_erased(batch)
    payloads = bodies(batch)
    batch = _withhold_gone(batch, payloads)
    if not batch:
        return True, answered_last
    # Due by then, all of them: one resent while on the wire is due later (_record).
    due_by = max(delivery.next_attempt_at for delivery in batch)
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    proxies = {}  # by URL: the environment's settings read once per batch, not per post
    delivered, failed, go_on = defaultdict(list), [], True
    read_at = float("-inf")
    for delivery in batch:
        if time.monotonic() >= deadline:
            break
        if time.monotonic() - read_at >= ENDPOINT_READ_SECONDS:
            endpoint, read_at = held.filter(is_active=True).first(), time.monotonic()
        if endpoint is None:  # switched off, or another sender holds it now
            go_on = False
            break
        if endpoint.url not in proxies:
            proxies[endpoint.url] = requests.utils.get_environ_proxies(endpoint.url)
        sent_at = timezone.now()
        body = payloads[delivery.pk]
        message_id = f"msg_{delivery.pk}"
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": _signature(endpoint, message_id, sent_at, body),
        }
        try:
            response = post_within(
                _session,
                timeout,
                endpoint.url,
                data=body.encode(),
                headers=headers,
                proxies=proxies[endpoint.url],
                verify=settings.WEBHOOK_CA_BUNDLE or True,
                allow_redirects=False,  # never to another host
            )
        except requests.RequestException as exc:
            failed.append(_failed(delivery, at=sent_at, code=None, error=_described(exc)))
            if not answered_last:  # down (or twice in a row): the rest wait for its retry
                go_on = False
                break
            answered_last = False  # answering, slow this once: the other members' go on
            continue
        answered_last = True
        code = response.status_code
        if 200 <= code < 300:
            delivered[code, delivery.attempts].append(delivery.pk)
            continue
        # As the receiver wrote it, but the characters a text column refuses (NUL) or
        # that are not text: saved, the attempt backs off as any failure does
        error = "".join(c for c in f"HTTP {code} {response.reason}" if c.isprintable())[:200]
        wait = _asked_wait(response.headers.get("retry-after", ""), sent_at)
        failed.append(_failed(delivery, at=sent_at, code=code, error=error, wait=wait))
        if code == GONE:
            _switch_off(endpoint, at=sent_at)
        if code in SLOW_DOWN and wait:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(paused_until=sent_at + wait)
        if code == GONE or code in SLOW_DOWN:
            go_on = False
            break
    _record(delivered, failed, due_by=due_by)
    if delivered:
        sent = [pk for ids in delivered.values() for pk in ids]
        members = WebhookDelivery.objects.filter(pk__in=sent).values("member_id")
        events.free_those_behind([batch[0].endpoint_id], members)
    return go_on, answered_last


def _asked_wait(retry_after: str, at) -> timedelta:
    """The wait a Retry-After header asks for (seconds, or an HTTP date), at most
    LONGEST_ASKED_WAIT; none when it has none, or none that can be read."""
    value = retry_after.strip()
    if value.isascii() and value.isdigit():
        longest = LONGEST_ASKED_WAIT.total_seconds()  # (and before int(): 5,000 digits raise)
        wait = timedelta(seconds=longest if len(value) > 9 else min(int(value), longest))
    else:
        try:
            wait = parsedate_to_datetime(value) - at
        # empty, unreadable, a date without a zone, or a year no datetime holds
        except (TypeError, ValueError, OverflowError, IndexError):
            return timedelta(0)
    return min(max(wait, timedelta(0)), LONGEST_ASKED_WAIT)


def _switch_off(endpoint, *, at) -> None:
    """The receiver answered 410 Gone: the endpoint is switched off, saying why, and
    hears of no new event; those waiting go once a superuser switches it on again."""
    when = timezone.localtime(at)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False,
        switched_off_reason=f"The receiver answered 410 Gone on {when:%-d %b %Y %H:%M}: it "
        "wants no more events. Switch it on again once it does.",
    )
    events.subscriptions_changed()


def _failed(delivery: WebhookDelivery, *, at, code, error, wait=timedelta(0)) -> WebhookDelivery:
    """A failed attempt: retried after its backoff, or the `wait` the receiver asked for
    if longer; failed after the last."""
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = at, code, error
    if delivery.attempts > len(RETRY_DELAYS):
        delivery.status = Status.FAILED
    else:
        delivery.next_attempt_at = at + max(RETRY_DELAYS[delivery.attempts - 1], wait)
    return delivery


def _record(delivered: dict, failed: list, *, due_by) -> None:
    """Save the attempts of a batch: those delivered in one statement per answer code
    and number of attempts before (stamped with the time the batch was recorded, within
    seconds of their attempt), the few failures one by one. A delivery resent while on
    the wire (attempts started again, due from the resend: after `due_by`, when every
    delivery of the batch was due) is left as the resend left it, whatever the answer.
    A delivery done (delivered, or failed after its last attempt) keeps no data
    (WebhookDelivery.data: an erased customer's code)."""
    now = timezone.now()
    as_sent = WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=due_by)
    for (code, attempts), ids in delivered.items():
        as_sent.filter(pk__in=ids, attempts=attempts).update(
            status=Status.DELIVERED,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            delivered_at=now,
            last_status_code=code,
            last_error="",
            data=None,
        )
    for delivery in failed:
        done = {"data": None} if delivery.status == Status.FAILED else {}
        as_sent.filter(pk=delivery.pk, attempts=delivery.attempts - 1).update(
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            **done,
        )


# An erasure's event for an endpoint switched off waits for it (Resending), but the code
# it keeps goes after this many days, like an import's file (IMPORT_FILE_DAYS).
ERASED_CODE_DAYS = 30
GIVEN_UP_ERASURE = f"Not sent within {ERASED_CODE_DAYS} days (the endpoint is switched off)."


def give_up_erased_codes(*, now=None) -> int:
    """Fail the member.erased deliveries still waiting ERASED_CODE_DAYS after the
    erasure, and remove the code they keep. Daily; safe to run twice. Returns how many."""
    now = now or timezone.now()
    return WebhookDelivery.objects.filter(
        # Through the pending-by-member index, whose first column is the endpoint.
        endpoint__in=list(WebhookEndpoint.objects.values_list("pk", flat=True)),
        status=Status.PENDING,
        type=events.EventType.MEMBER_ERASED,
        created_at__lt=now - timedelta(days=ERASED_CODE_DAYS),
    ).update(status=Status.FAILED, last_error=GIVEN_UP_ERASURE, data=None)


def _described(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "No answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_refusal(exc)
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, RefusedNetwork):
            return reason.refusal[: WebhookDelivery._meta.get_field("last_error").max_length]
        return "Could not connect"
    return type(exc).__name__


# OpenSSL's verify codes of a certificate whose issuer is not trusted: self-signed (18),
# self-signed in its chain (19), issuer unknown (20), and unable to verify the first (21).
UNKNOWN_ISSUER = {18, 19, 20, 21}


def _tls_refusal(exc: requests.exceptions.SSLError) -> str:
    """What the TLS handshake refused, for the superuser who must fix it: the
    certificate's fault as OpenSSL names it (expired, self-signed, another host's),
    or the handshake's."""
    cause = _ssl_error_in(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        # Issued by a CA not among WEBHOOK_CA_BUNDLE's; or expired, or another host's
        unknown_issuer = cause.verify_code in UNKNOWN_ISSUER
        why = f"Certificate not trusted: {cause.verify_message}" + (
            " (WEBHOOK_CA_BUNDLE)" if unknown_issuer else ""
        )
    else:
        why = f"TLS failed: {getattr(cause, 'reason', None) or 'handshake refused'}"
    return why[: WebhookDelivery._meta.get_field("last_error").max_length]


def _ssl_error_in(exc: BaseException) -> ssl.SSLError | None:
    """The ssl module's error that requests and urllib3 wrapped, however deep."""
    seen, todo = set(), [exc]
    while todo:
        error = todo.pop()
        if isinstance(error, ssl.SSLError):
            return error
        if isinstance(error, BaseException) and id(error) not in seen:
            seen.add(id(error))
            todo += [error.__cause__, error.__context__, getattr(error, "reason", None)]
            todo += error.args
    return None


def payload(delivery: WebhookDelivery) -> dict | None:
    """The body a delivery sends, as data (for the admin); None once its subject is gone."""
    body = bodies([delivery]).get(delivery.pk)
    return json.loads(body) if body else None
