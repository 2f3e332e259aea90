"""Events the brand's systems hear about through webhooks (Webhooks, contract).

Each writer reports its change here in its own database transaction: one delivery row
per active endpoint that wants the event (an outbox). Nothing is written when no
endpoint wants it, so an event nobody listens to costs one cached lookup. Bulk jobs
report a whole chunk in one row (BulkEvent), whose deliveries are written set-based
before the sender sends. api.webhooks sends.
"""

import json
import time

from django.apps import apps
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from core.models import BulkEvent, WebhookDelivery, WebhookEndpoint


class EventType(models.TextChoices):
    MEMBER_ENROLLED = "member.enrolled", "member.enrolled: a member joined"
    MEMBER_TIER_CHANGED = "member.tier_changed", "member.tier_changed: a tier changed"
    POINTS_EXPIRING = "points.expiring", "points.expiring: the reminder before a cutoff"
    POINTS_EXPIRED = "points.expired", "points.expired: points expired at a cutoff"
    REDEMPTION_CREATED = "redemption.created", "redemption.created: a reward was redeemed"
    REDEMPTION_CANCELLED = (
        "redemption.cancelled",
        "redemption.cancelled: a redemption was undone",
    )
    TRANSACTION_RECORDED = (
        "transaction.recorded",
        "transaction.recorded: a purchase, return or action (high volume)",
    )
    MEMBER_ERASED = (
        "member.erased",
        "member.erased: a member was erased (the codes to forget)",
    )


# Which endpoints want which event, read at most this often per process: an endpoint
# saved in the CX Manager hears events from a second or so later (at once in the
# process that saved it).
SUBSCRIPTIONS_SECONDS = 1.0
_subscriptions: dict[str, list[int]] = {}
_read_at = float("-inf")


def subscribers(event_type: str) -> list[int]:
    """The ids of the active endpoints that want this event type."""
    global _subscriptions, _read_at
    if time.monotonic() - _read_at > SUBSCRIPTIONS_SECONDS:
        wanted: dict[str, list[int]] = {}
        for pk, events in WebhookEndpoint.objects.filter(is_active=True).values_list(
            "pk", "events"
        ):
            for name in set(events):  # an endpoint saved before events were made unique
                wanted.setdefault(name, []).append(pk)
        _subscriptions, _read_at = wanted, time.monotonic()
    return _subscriptions.get(event_type, [])


def subscriptions_changed() -> None:
    """Read the endpoints again at the next event (after an endpoint is saved)."""
    global _read_at
    _read_at = float("-inf")


def wanted(event_type: str) -> bool:
    return bool(subscribers(event_type))


def record(event_type: str, *, member_id: int, subject_id: int, at=None) -> None:
    """Report one event, in the caller's transaction."""
    record_many(event_type, [(member_id, subject_id)], at=at)


def record_many(event_type: str, subjects, *, at=None, data=None) -> None:
    """Report one event per (member_id, subject_id), in the caller's transaction.
    `data`: {subject_id: what its event tells that the subject row will not} (kept on
    each delivery: WebhookDelivery.data)."""
    rows = delivery_rows(event_type, subjects, at=at)
    data = data or {}
    deliveries = [dict(zip(DELIVERY_COLUMNS, row, strict=True)) for row in rows]
    if deliveries:
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(**d, data=data.get(d["subject_id"])) for d in deliveries],
            batch_size=1000,
        )


DELIVERY_COLUMNS = [
    "endpoint_id",
    "type",
    "member_id",
    "subject_id",
    "created_at",
    "next_attempt_at",
    "status",
    "attempts",
    "last_error",
]


def delivery_rows(event_type: str, subjects, *, at=None) -> list[tuple]:
    """The rows (DELIVERY_COLUMNS) that report these events, for a writer that copies
    its rows in bulk (core.bulk.CopyBehind)."""
    endpoints = subscribers(event_type)
    if not endpoints:
        return []
    at = at or timezone.now()
    return [
        (endpoint, event_type, member_id, subject_id, at, at, WebhookDelivery.Status.PENDING, 0, "")
        for member_id, subject_id in subjects
        for endpoint in endpoints
    ]


def withdraw(event_type: str, *, member_id: int, subject_ids, why: str) -> None:
    """Stop the member's pending events of subjects that are gone (expiry reminders
    dropped by a merge or an erasure), rather than send them without their data: marked
    failed, with why, on the Webhook deliveries page. Those behind them go at once."""
    # Through the pending-by-member index, whose first column is the endpoint.
    endpoints = list(WebhookEndpoint.objects.values_list("pk", flat=True))
    withdrawn = WebhookDelivery.objects.filter(
        endpoint__in=endpoints,
        member_id=member_id,
        status=WebhookDelivery.Status.PENDING,
        type=event_type,
        subject_id__in=list(subject_ids),
    ).update(status=WebhookDelivery.Status.FAILED, last_error=why[:200])
    if withdrawn:
        free_those_behind(endpoints, [member_id])


def free_those_behind(endpoints, members) -> None:
    """The members' deliveries that waited, never tried, behind their oldest one (the
    sender moves them to its retry time: api.webhooks._due) are due at once, now that it
    is out of the line: delivered before its retry (resent), or withdrawn. `members`:
    ids, or a query of them."""
    now = timezone.now()
    WebhookDelivery.objects.filter(
        endpoint__in=endpoints,
        member_id__in=members,
        status=WebhookDelivery.Status.PENDING,
        attempts=0,
        next_attempt_at__gt=now,
    ).update(next_attempt_at=now)


def record_bulk(event_type: str, model, **filters) -> None:
    """Report one event per row of `model` matching `filters` (each row has a `member`),
    in the caller's transaction and in one row: for the bulk jobs. The deliveries are
    written by expand_bulk_events, before the sender sends."""
    endpoints = subscribers(event_type)
    if endpoints:
        BulkEvent.objects.create(
            type=event_type,
            model=model._meta.label,
            # Dates and times in full (DjangoJSONEncoder would cut microseconds off).
            filters=json.loads(json.dumps(filters, default=lambda value: value.isoformat())),
            endpoints=endpoints,
        )


def expand_bulk_events() -> int:
    """Write the deliveries of the bulk events not yet expanded, each in a transaction
    of its own; workers running at once take different ones. Returns how many were
    expanded. Dated when their job reported them, so that they keep their place in
    each member's order."""
    expanded = 0
    while True:
        with transaction.atomic():
            bulk = (
                BulkEvent.objects.filter(expanded_at=None)
                .select_for_update(skip_locked=True)
                .order_by("pk")
                .first()
            )
            if bulk is None:
                return expanded
            rows = apps.get_model(bulk.model).objects.filter(**bulk.filters)
            subjects = rows.values("member_id", subject_id=F("pk"))
            _insert_from(subjects, bulk.type, bulk.endpoints, at=bulk.created_at)
            bulk.expanded_at = timezone.now()
            bulk.save(update_fields=["expanded_at"])
            expanded += 1


def bulk_events_in_progress() -> bool:
    """Whether a bulk event is still being expanded by another worker (expand_bulk_events
    skips those another holds): its deliveries are older than those of its members
    recorded since, so a sender waits for them (found by a review: a member's purchase
    went before the threshold change that moved them)."""
    return BulkEvent.objects.filter(expanded_at=None).exists()


def _insert_from(subjects, event_type, endpoints, *, at) -> None:
    """One delivery per endpoint and row of `subjects` (values member_id, subject_id);
    those written before stay as they are (the unique endpoint, type and subject)."""
    sql, params = subjects.query.sql_with_params()
    table, endpoint_table = WebhookDelivery._meta.db_table, WebhookEndpoint._meta.db_table
    marks = ", ".join(["%s"] * len(endpoints))
    at = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (endpoint_id, type, member_id, subject_id, created_at,
                                 next_attempt_at, status, attempts, last_error)
            SELECT e.id, %s, s.member_id, s.subject_id, %s, %s, %s, 0, ''
            FROM ({sql}) s CROSS JOIN {endpoint_table} e
            WHERE e.id IN ({marks})
            ON CONFLICT DO NOTHING
            """,
            [event_type, at, at, WebhookDelivery.Status.PENDING, *params, *endpoints],
        )
