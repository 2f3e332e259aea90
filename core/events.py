"""Events the brand's systems hear about through webhooks (Webhooks, contract).

Each writer reports its change here in its own database transaction: one delivery row
per active endpoint that wants the event (an outbox). Nothing is written when no
endpoint wants it, so an event nobody listens to costs one cached lookup. Bulk jobs
report set-based, from the query of the rows they just wrote. api.webhooks sends.
"""

import time

from django.db import connection, models
from django.utils import timezone

from core.models import WebhookDelivery, WebhookEndpoint


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
            for name in events:
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


def record_many(event_type: str, subjects, *, at=None) -> None:
    """Report one event per (member_id, subject_id), in the caller's transaction."""
    rows = delivery_rows(event_type, subjects, at=at)
    if rows:
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(**dict(zip(DELIVERY_COLUMNS, row, strict=True))) for row in rows],
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


def record_from_query(event_type: str, subjects) -> int:
    """Report one event per row of `subjects`, a queryset of values `member_id` and
    `subject_id`: set-based, for the bulk jobs. Events reported before are not reported
    again (the unique endpoint, type and subject)."""
    endpoints = subscribers(event_type)
    if not endpoints:
        return 0
    sql, params = subjects.query.sql_with_params()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table, endpoint_table = WebhookDelivery._meta.db_table, WebhookEndpoint._meta.db_table
    marks = ", ".join(["%s"] * len(endpoints))
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
            [event_type, now, now, WebhookDelivery.Status.PENDING, *params, *endpoints],
        )
        return cursor.rowcount
